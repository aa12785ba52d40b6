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
    deleteSegmentation: segUid => call('DELETE', `/api/segmentations/${encodeURIComponent(segUid)}`),
    review: (segUid, status, comment = '') =>
      call('POST', `/api/segmentations/${encodeURIComponent(segUid)}/review`, { json: { status, comment } }),
  };
}
