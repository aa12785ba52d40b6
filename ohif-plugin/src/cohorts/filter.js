// The study list narrowed to one of the user's cohorts. The server filters (`/dicom-web/studies?cohort=<id>`); the
// prebuilt viewer has no setting for an extra search parameter, so the viewer's study searches get it added here.
export const COHORT_KEY = 'awesomme.cohort';
export const COHORT_PARAM = 'cohort';
const STUDY_SEARCH = '/dicom-web/studies';

/** The cohort chosen in this tab (its id as text), or null for all of the user's cohorts. */
export function chosenCohort(storage = window.sessionStorage) {
  const id = storage.getItem(COHORT_KEY);
  return id && /^\d+$/.test(id) ? id : null;
}

export function chooseCohort(id, storage = window.sessionStorage) {
  if (id === null || id === undefined || id === '') storage.removeItem(COHORT_KEY);
  else storage.setItem(COHORT_KEY, String(id));
}

/** ``url`` with ``cohort=<id>`` added when it is a study search of our DICOMweb (and names no cohort yet). */
export function withCohort(url, cohortId, origin = window.location.origin) {
  if (!cohortId) return url;
  let parsed;
  try {
    parsed = new URL(String(url), origin);
  } catch {
    return url;
  }
  if (parsed.origin !== origin || parsed.pathname !== STUDY_SEARCH || parsed.searchParams.has(COHORT_PARAM)) return url;
  parsed.searchParams.set(COHORT_PARAM, cohortId);
  return parsed.origin === origin && !/^[a-z]+:/i.test(String(url)) ? parsed.pathname + parsed.search : parsed.href;
}

/** Adds the chosen cohort to the viewer's study searches (its DICOMweb client uses XMLHttpRequest); once. */
export function installCohortFilter(XHR = globalThis.XMLHttpRequest, storage = window.sessionStorage) {
  if (!XHR || XHR.prototype.__awesommeCohort) return;
  const open = XHR.prototype.open;
  XHR.prototype.open = function openWithCohort(method, url, ...rest) {
    return open.call(this, method, withCohort(url, chosenCohort(storage)), ...rest);
  };
  XHR.prototype.__awesommeCohort = true;
}

/** A ``?cohort=<id>`` in the page's address chooses that cohort for this tab (a link to one cohort's list). */
export function cohortFromAddress(search = window.location.search, storage = window.sessionStorage) {
  const id = new URLSearchParams(search).get(COHORT_PARAM);
  if (id !== null) chooseCohort(/^\d+$/.test(id) ? id : null, storage);
}
