import { describe, expect, it, vi } from 'vitest';
import { ApiError, createClient, parseLabels } from '../src/api/client.js';

function reply(status, body) {
  return { ok: status < 400, status, statusText: '', text: async () => JSON.stringify(body), json: async () => body };
}

describe('the API client', () => {
  it('sends every call same-origin with the cookie and never an Authorization header', async () => {
    const fetch = vi.fn(async () => reply(200, []));
    const client = createClient(fetch);
    await client.models('1.2.3');
    await client.segmentations('1.2.3');
    await client.me();
    for (const [, init] of fetch.mock.calls) {
      expect(init.credentials).toBe('same-origin');
      expect(init.headers.Authorization).toBeUndefined();
    }
    expect(fetch.mock.calls.map(([url]) => url)).toEqual([
      '/api/models?series_uid=1.2.3',
      '/api/segmentations?series_uid=1.2.3',
      '/api/users/me',
    ]);
  });

  it('runs a model through MONAI Label\'s /infer on the series, asking for JSON', async () => {
    const fetch = vi.fn(async () => reply(200, { params: { seg_series_uid: '9.9' } }));
    await createClient(fetch).runModel('osteosarcoma_mr', '1.2.3', 'first pass');
    const [url, init] = fetch.mock.calls[0];
    expect(url).toBe('/infer/osteosarcoma_mr?image=1.2.3&output=json');
    expect(init.method).toBe('POST');
    expect(JSON.parse(init.body)).toEqual({ description: 'first pass' });
  });

  it('saves a SEG as multipart with series_uid, file and based_on', async () => {
    const fetch = vi.fn(async () => reply(201, { seg_uid: '7.7', segments: 1 }));
    const blob = new Blob([new Uint8Array([1, 2, 3])], { type: 'application/dicom' });
    const saved = await createClient(fetch).saveSegmentation({ seriesUid: '1.2.3', blob, basedOn: '4.5.6' });
    expect(saved.seg_uid).toBe('7.7');
    const [url, init] = fetch.mock.calls[0];
    expect(url).toBe('/api/segmentations');
    expect(init.body.get('series_uid')).toBe('1.2.3');
    expect(init.body.get('based_on')).toBe('4.5.6');
    expect(init.body.get('file')).toBeInstanceOf(Blob);
    expect(init.headers['Content-Type']).toBeUndefined(); // the browser writes the multipart boundary
  });

  it('leaves based_on out of a manual segmentation', async () => {
    const fetch = vi.fn(async () => reply(201, { seg_uid: '7.7' }));
    await createClient(fetch).saveSegmentation({ seriesUid: '1.2.3', blob: new Blob([]) });
    expect(fetch.mock.calls[0][1].body.has('based_on')).toBe(false);
  });

  it('turns a refusal into an ApiError carrying the server\'s reason', async () => {
    const fetch = vi.fn(async () => reply(422, { detail: 'LABELMAP segmentations (1.2.840.10008.5.1.4.1.1.66.7) are refused' }));
    const error = await createClient(fetch).review('1.2', 'accepted').catch(caught => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.message).toContain('LABELMAP');
  });

  it('imports a file as multipart with its metadata: a label map from "value=name" pairs, the reader, the type', async () => {
    const fetch = vi.fn(async () => reply(201, { seg_uid: '8.8', series_uid: '1.2.3', format: 'nifti' }));
    const file = new File([new Uint8Array([1])], 'mask.nii.gz');
    await createClient(fetch).importSegmentation({
      seriesUid: '1.2.3', file, description: 'from Slicer', labels: '1=tumour, 2=bone',
      algorithmType: 'SEMIAUTOMATIC', reader: 'Dr Who',
    });
    const [url, init] = fetch.mock.calls[0];
    expect(url).toBe('/api/segmentations/import');
    expect(init.method).toBe('POST');
    expect(init.body.get('series_uid')).toBe('1.2.3');
    expect(init.body.get('file').name).toBe('mask.nii.gz');
    expect(JSON.parse(init.body.get('label_map'))).toEqual({ 1: 'tumour', 2: 'bone' });
    expect(init.body.has('segment_label')).toBe(false);
    expect(init.body.get('algorithm_type')).toBe('SEMIAUTOMATIC');
    expect(init.body.get('reader')).toBe('Dr Who');
    expect(init.body.get('description')).toBe('from Slicer');
  });

  it('names a single segment with segment_label, and refuses a malformed label list before sending', async () => {
    expect(parseLabels('tumour')).toEqual({ segmentLabel: 'tumour' });
    expect(parseLabels('')).toEqual({});
    expect(() => parseLabels('1=tumour, =bone')).toThrow(/not value=name/);
    const fetch = vi.fn(async () => reply(201, {}));
    await createClient(fetch).importSegmentation({ seriesUid: '1.2.3', file: new File([], 'a.nrrd'), labels: 'liver' });
    expect(fetch.mock.calls[0][1].body.get('segment_label')).toBe('liver');
    expect(fetch.mock.calls[0][1].body.has('label_map')).toBe(false);
  });

  it('interpolates one segment of a SEG as JSON', async () => {
    const fetch = vi.fn(async () => reply(201, { seg_uid: '9.9', added_voxels: 12 }));
    await createClient(fetch).interpolate('1.2.3', '4.5.6', 2);
    const [url, init] = fetch.mock.calls[0];
    expect(url).toBe('/api/segmentations/interpolate');
    expect(JSON.parse(init.body)).toEqual({ series_uid: '1.2.3', seg_uid: '4.5.6', segment_number: 2 });
  });
});
