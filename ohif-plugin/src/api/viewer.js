// What the panel needs from the host viewer, through the managers OHIF injects (never a second copy of its code).
import { data as dcmjsData } from 'dcmjs';

const PENDING_KEY = 'awesomme.loadAfterReload';
// segmentationId -> the SeriesInstanceUID of the SEG it was loaded from (what an edit is based on).
const loadedFrom = new Map();

/** The image series shown in the active viewport: {studyUid, seriesUid, modality}, or null. */
export function openSeries(servicesManager) {
  const { viewportGridService, displaySetService } = servicesManager.services;
  const viewportId = viewportGridService.getActiveViewportId();
  const uids = viewportGridService.getDisplaySetsUIDsForViewport(viewportId) ?? [];
  for (const uid of uids) {
    const displaySet = displaySetService.getDisplaySetByUID(uid);
    if (!displaySet) continue;
    const image = displaySet.isOverlayDisplaySet
      ? displaySetService.getDisplaySetByUID(displaySet.referencedDisplaySetInstanceUID)
      : displaySet;
    if (image && image.Modality !== 'SEG') {
      return { studyUid: image.StudyInstanceUID, seriesUid: image.SeriesInstanceUID, modality: image.Modality };
    }
  }
  return null;
}

/** The SEG display set whose series is ``segUid``, or undefined while the viewer does not know it. */
export function segDisplaySet(servicesManager, segUid) {
  return servicesManager.services.displaySetService
    .getActiveDisplaySets()
    .find(displaySet => displaySet.SeriesInstanceUID === segUid && displaySet.Modality === 'SEG');
}

/** Overlays a SEG of the study on the active viewport; false when the viewer has no such display set. */
export async function loadSeg(servicesManager, commandsManager, segUid) {
  const displaySet = segDisplaySet(servicesManager, segUid);
  if (!displaySet) return false;
  const { viewportGridService, userAuthenticationService, segmentationService } = servicesManager.services;
  const viewportId = viewportGridService.getActiveViewportId();
  // The SEG's frames become a segmentation first (what OHIF's SEG viewport does before it offers to overlay it).
  if (!displaySet.isLoaded && typeof displaySet.load === 'function') {
    await displaySet.load({ headers: userAuthenticationService?.getAuthorizationHeader?.() ?? {} });
  }
  await commandsManager.runCommand('hydrateSecondaryDisplaySet', { displaySet, viewportId });
  // Where the viewport already showed the SEG's series, hydrating changes nothing: overlay it ourselves.
  const segmentationId = displaySet.displaySetInstanceUID;
  loadedFrom.set(segmentationId, segUid);
  const shown = segmentationService.getSegmentationRepresentations(viewportId, { segmentationId }) ?? [];
  if (shown.length === 0) await segmentationService.addSegmentationRepresentation(viewportId, { segmentationId });
  segmentationService.setActiveSegmentation?.(viewportId, segmentationId);
  return true;
}

/** The segmentation being edited in the active viewport: {segmentationId, sourceSegUid} (the SEG it was loaded from). */
export function activeSegmentation(servicesManager) {
  const { segmentationService, viewportGridService, displaySetService } = servicesManager.services;
  // A SEG just overlaid is not always made the active one: then the only segmentation is the one being edited.
  const all = segmentationService.getSegmentations() ?? [];
  const active =
    segmentationService.getActiveSegmentation(viewportGridService.getActiveViewportId()) ??
    (all.length === 1 ? all[0] : null);
  if (!active) return null;
  // A segmentation loaded from a SEG carries that SEG display set's UID as its id.
  const { segmentationId } = active;
  const source = displaySetService.getDisplaySetByUID(segmentationId);
  const fromDisplaySet = source?.Modality === 'SEG' ? source.SeriesInstanceUID : null;
  return { segmentationId, sourceSegUid: loadedFrom.get(segmentationId) ?? fromDisplaySet };
}

/** The segmentation as the DICOM SEG OHIF writes (bitmap, per the data source's store setting), as a Blob. */
export function encodeSegmentation(commandsManager, segmentationId, description) {
  const generated = commandsManager.runCommand('generateSegmentation', {
    segmentationId,
    options: { dataSource: 'dicomweb', SeriesDescription: description || 'AWESOMME edit' },
  });
  const dataset = generated?.dataset;
  if (!dataset) throw new Error('the viewer wrote no SEG for this segmentation');
  // datasetToBlob needs Node's Buffer; the dictionary's own writer does not.
  const bytes = dcmjsData.datasetToDict(dataset).write();
  return new Blob([bytes], { type: 'application/dicom' });
}

/**
 * OHIF 3.13.2 caches a study's metadata under a key its own invalidation never matches, so a SEG stored after the
 * study opened only shows after a reload: remember which one to overlay, then reload.
 */
export function reloadToShow(segUid, storage = window.sessionStorage, reload = () => window.location.reload()) {
  storage.setItem(PENDING_KEY, segUid);
  reload();
}

/** The SEG to overlay after a reload; it stays pending until shown (the panel may mount more than once). */
export function pending(storage = window.sessionStorage) {
  return storage.getItem(PENDING_KEY);
}

export function shown(segUid, storage = window.sessionStorage) {
  if (storage.getItem(PENDING_KEY) === segUid) storage.removeItem(PENDING_KEY);
}

/**
 * Makes a SEG stored after the study opened known to the viewer without a reload, then overlays it; false when the
 * viewer would not show it (the caller then reloads). OHIF 3.13.2 caches a study's metadata under
 * `<data source name>:<StudyInstanceUID>`: that entry is dropped, only the new series is read, and the entry is
 * dropped again so that a later full read of the study is a fresh one.
 */
export async function showNewSeg(servicesManager, commandsManager, extensionManager, studyUid, segUid, waitMs = 10000) {
  const [dataSource] = extensionManager?.getActiveDataSource?.() ?? [];
  if (!dataSource?.retrieve?.series?.metadata || !dataSource.deleteStudyMetadataPromise) return false;
  const cacheKey = `${dataSource.getConfig?.()?.name ?? 'awesomme'}:${studyUid}`;
  dataSource.deleteStudyMetadataPromise(cacheKey);
  try {
    await dataSource.retrieve.series.metadata({ StudyInstanceUID: studyUid, filters: { seriesInstanceUID: [segUid] } });
  } finally {
    dataSource.deleteStudyMetadataPromise(cacheKey);
  }
  for (let waited = 0; !segDisplaySet(servicesManager, segUid); waited += 100) {
    if (waited >= waitMs) return false;
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  return loadSeg(servicesManager, commandsManager, segUid);
}
