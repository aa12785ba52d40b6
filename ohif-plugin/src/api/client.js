// The platform's API as the panel uses it. Same-origin fetches only: the HttpOnly session cookie authenticates,
// the browser never holds a token. Every refusal becomes an ApiError carrying the server's reason.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

async function reasonOf(response) {
  let text = '';
  try {
    text = await response.text();
    const body = JSON.parse(text);
    const detail = body.detail ?? body.error ?? body.message;
    if (typeof detail === 'string') return detail;
    if (Array.isArray(detail)) return detail.map(item => item.msg ?? JSON.stringify(item)).join('; ');
    if (detail !== undefined) return JSON.stringify(detail);
  } catch {
    // not JSON: the text itself, short
  }
  return text.slice(0, 300) || response.statusText || `HTTP ${response.status}`;
}

/**
 * Segment labels as typed in the panel: one name ("tumour") labels a single-segment file; "1=tumour, 2=bone" names
 * the values of a label map (or the segments of a SEG, RTSTRUCT's ROI names).
 */
export function parseLabels(text) {
  const trimmed = text.trim();
  if (!trimmed) return {};
  if (!trimmed.includes('=')) return { segmentLabel: trimmed };
  const labelMap = {};
  for (const part of trimmed.split(/[,;\n]/)) {
    if (!part.trim()) continue;
    const at = part.indexOf('=');
    const key = part.slice(0, at).trim();
    const name = part.slice(at + 1).trim();
    if (at < 1 || !key || !name) throw new Error(`segment labels: "${part.trim()}" is not value=name`);
    labelMap[key] = name;
  }
  return { labelMap };
}

export function createClient(fetchImpl = (...args) => globalThis.fetch(...args)) {
  async function call(method, path, { query, json, form } = {}) {
    const url = query ? `${path}?${new URLSearchParams(query)}` : path;
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (json !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(json);
    } else if (form !== undefined) {
      init.body = form;
    }
    const response = await fetchImpl(url, init);
    if (!response.ok) {
      throw new ApiError(response.status, `${method} ${path}: ${response.status} ${await reasonOf(response)}`);
    }
    return response.status === 204 ? null : response.json();
  }

  return {
    me: () => call('GET', '/api/users/me'),
    logout: () => call('DELETE', '/api/auth/session'),
    models: seriesUid => call('GET', '/api/models', { query: { series_uid: seriesUid } }),
    segmentations: seriesUid => call('GET', '/api/segmentations', { query: { series_uid: seriesUid } }),
    runModel: (model, seriesUid, description) => {
      const query = { image: seriesUid, output: 'json' };
      const json = description ? { description } : {};
      return call('POST', `/infer/${encodeURIComponent(model)}`, { query, json });
    },
    saveSegmentation: ({ seriesUid, blob, basedOn, description }) => {
      const form = new FormData();
      form.append('series_uid', seriesUid);
      form.append('file', blob, 'segmentation.dcm');
      if (basedOn) form.append('based_on', basedOn);
      if (description) form.append('description', description);
      return call('POST', '/api/segmentations', { form });
    },
    /** A file made elsewhere (NIfTI, NRRD, DICOM SEG, RTSTRUCT) stored as a new SEG of the series. */
    importSegmentation: ({ seriesUid, file, description, labels, algorithmType, reader }) => {
      const form = new FormData();
      form.append('series_uid', seriesUid);
      form.append('file', file, file.name || 'segmentation');
      if (description) form.append('description', description);
      const names = parseLabels(labels ?? '');
      if (names.labelMap) form.append('label_map', JSON.stringify(names.labelMap));
      else if (names.segmentLabel) form.append('segment_label', names.segmentLabel);
      if (algorithmType) form.append('algorithm_type', algorithmType);
      if (reader) form.append('reader', reader);
      return call('POST', '/api/segmentations/import', { form });
    },
    interpolate: (seriesUid, segUid, segmentNumber) =>
      call('POST', '/api/segmentations/interpolate', {
        json: { series_uid: seriesUid, seg_uid: segUid, segment_number: segmentNumber },
      }),
    deleteSegmentation: segUid => call('DELETE', `/api/segmentations/${encodeURIComponent(segUid)}`),
    review: (segUid, status, comment = '') =>
      call('POST', `/api/segmentations/${encodeURIComponent(segUid)}/review`, { json: { status, comment } }),
  };
}
