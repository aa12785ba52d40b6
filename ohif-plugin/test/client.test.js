import { describe, expect, it, vi } from 'vitest';
import { ApiError, createClient } from '../src/api/client.js';

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
});
