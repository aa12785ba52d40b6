// Our Segmentation panel: who is logged in, the models usable on the open series (run one, see its SEG), the
// series' SEGs (load, interpolate a segment, review, delete your own), Save of the segmentation being edited as a new
// SEG, and Import of a file made elsewhere (NIfTI, NRRD, DICOM SEG, RTSTRUCT) with its metadata.
import React, { useCallback, useEffect, useRef, useState } from 'react';
import { createClient } from '../api/client.js';
import * as viewer from '../api/viewer.js';

const box = { padding: '8px', color: '#d8e1ec', fontSize: '13px', fontFamily: 'sans-serif' };
const button = {
  background: '#1f4e79', color: '#fff', border: '1px solid #3c78b4', borderRadius: '3px',
  padding: '2px 8px', margin: '2px', cursor: 'pointer',
};
const section = { borderTop: '1px solid #345', marginTop: '8px', paddingTop: '6px' };
const POLL_MS = 1000;
const field = { width: '95%', background: '#111', color: '#ddd', border: '1px solid #345', margin: '1px 0' };
const EMPTY_UPLOAD = { file: null, description: '', labels: '', algorithmType: 'MANUAL', reader: '' };
const ALGORITHM_TYPES = ['MANUAL', 'SEMIAUTOMATIC', 'AUTOMATIC'];

/** What the caller may do with a SEG: delete it when they stored it, or administer one of its cohorts. */
export function mayDelete(me, seg) {
  if (!me) return false;
  if (me.platform_admin || (seg.created_by && seg.created_by === me.username)) return true;
  return (seg.cohorts ?? []).some(cohort => cohort.role === 'admin');
}

function segmentsOf(seg) {
  return Array.isArray(seg.segments) ? seg.segments.filter(segment => Number.isInteger(segment?.number)) : [];
}

function validationText(validation) {
  if (!validation || typeof validation !== 'object') return '';
  return Object.entries(validation)
    .filter(([, value]) => typeof value === 'number' || typeof value === 'string')
    .map(([key, value]) => `${key} ${typeof value === 'number' ? Math.round(value * 1000) / 1000 : value}`)
    .join(', ');
}

function runtimeText(runtime) {
  if (!runtime || typeof runtime !== 'object') return '';
  return Object.entries(runtime).map(([device, seconds]) => `~${seconds} s on ${device}`).join(', ');
}

export function SegmentationPanel({
  servicesManager, commandsManager, extensionManager, client: givenClient, pollMs = POLL_MS,
}) {
  const client = useRef(givenClient ?? createClient()).current;
  const notify = useCallback(
    (message, type = 'error') => {
      servicesManager.services.uiNotificationService?.show({ title: 'AWESOMME', message, type, duration: 6000 });
    },
    [servicesManager]
  );
  const [me, setMe] = useState(null);
  const [series, setSeries] = useState(null);
  const [models, setModels] = useState([]);
  const [segs, setSegs] = useState([]);
  const [busy, setBusy] = useState('');
  const [description, setDescription] = useState('');
  const [lastRun, setLastRun] = useState(null);
  const [upload, setUpload] = useState(EMPTY_UPLOAD);
  const fileInput = useRef(null);

  const attempt = useCallback(
    async (label, action) => {
      setBusy(label);
      try {
        return await action();
      } catch (error) {
        console.error(`AWESOMME: ${label} failed`, error);
        if (error.status === 401) {
          // The session ended: log in again in another tab, so that what is painted here is still here to save.
          window.open('/login?next=/viewer/', '_blank');
          notify('Your session has ended: log in again in the tab just opened, then press the button again here. Your edits are kept in this tab.');
          return undefined;
        }
        notify(error.message ?? String(error));
        return undefined;
      } finally {
        setBusy('');
      }
    },
    [notify]
  );

  useEffect(() => {
    client.me().then(setMe, error => notify(error.message));
  }, [client, notify]);

  // Follows the active viewport's series (a poll: OHIF's grid events differ between releases).
  useEffect(() => {
    const look = () => {
      let found = null;
      try {
        found = viewer.openSeries(servicesManager);
      } catch {
        found = null;
      }
      setSeries(previous => (previous?.seriesUid === found?.seriesUid ? previous : found));
    };
    look();
    const timer = setInterval(look, pollMs);
    return () => clearInterval(timer);
  }, [servicesManager, pollMs]);

  const refresh = useCallback(async () => {
    if (!series) {
      setModels([]);
      setSegs([]);
      return;
    }
    try {
      const [usable, listed] = await Promise.all([client.models(series.seriesUid), client.segmentations(series.seriesUid)]);
      setModels(usable);
      setSegs(listed);
    } catch (error) {
      notify(error.message);
    }
  }, [client, series, notify]);

  useEffect(() => {
    refresh();
  }, [refresh]);

  // A SEG stored before the last reload (a run or a save): overlay it once the viewer knows it.
  useEffect(() => {
    const segUid = viewer.pending();
    if (!segUid) return undefined;
    let loading = false;
    const timer = setInterval(async () => {
      if (loading || !viewer.segDisplaySet(servicesManager, segUid)) return;
      loading = true;
      clearInterval(timer);
      if (await attempt('Loading', () => viewer.loadSeg(servicesManager, commandsManager, segUid))) viewer.shown(segUid);
    }, 500);
    return () => clearInterval(timer);
  }, [servicesManager, commandsManager, attempt]);

  // A SEG just stored (a run, an import, an interpolation): shown at once where the viewer allows, else after a reload.
  const show = async segUid => {
    let shownNow = false;
    try {
      shownNow = await viewer.showNewSeg(servicesManager, commandsManager, extensionManager, series.studyUid, segUid);
    } catch (error) {
      console.warn('AWESOMME: showing the new SEG without a reload failed', error);
    }
    if (shownNow) await refresh();
    else viewer.reloadToShow(segUid);
  };

  const run = model =>
    attempt(`Running ${model.name}`, async () => {
      const answer = await client.runModel(model.name, series.seriesUid, description);
      const params = answer?.params ?? answer ?? {};
      setLastRun({ model: model.name, ...params });
      if (!params.seg_series_uid) {
        notify(`${model.name} found nothing on this series`, 'info');
        return;
      }
      notify(`${model.name}: SEG stored, loading it`, 'success');
      await show(params.seg_series_uid);
    });

  const load = seg =>
    attempt('Loading', async () => {
      if (!(await viewer.loadSeg(servicesManager, commandsManager, seg.seg_uid))) viewer.reloadToShow(seg.seg_uid);
    });

  const save = () =>
    attempt('Saving', async () => {
      const active = viewer.activeSegmentation(servicesManager);
      if (!active) {
        notify('Nothing to save: add or load a segmentation first', 'warning');
        return;
      }
      const blob = viewer.encodeSegmentation(commandsManager, active.segmentationId, description);
      // The series' SEGs as they are now (the panel may have just mounted, its list not yet fetched).
      const current = active.sourceSegUid ? await client.segmentations(series.seriesUid) : [];
      const source = current.find(seg => seg.seg_uid === active.sourceSegUid);
      const basedOn = source && source.role === 'prediction' ? source.seg_uid : source?.derived_from ?? null;
      const saved = await client.saveSegmentation({ seriesUid: series.seriesUid, blob, basedOn, description });
      notify(`Saved as a new SEG (${saved.seg_uid})`, 'success');
      viewer.reloadToShow(saved.seg_uid);
    });

  const importFile = () =>
    attempt('Importing', async () => {
      if (!upload.file) {
        notify('Choose a NIfTI, NRRD, DICOM SEG or RTSTRUCT file first', 'warning');
        return;
      }
      const imported = await client.importSegmentation({ seriesUid: series.seriesUid, ...upload });
      setUpload(EMPTY_UPLOAD);
      if (fileInput.current) fileInput.current.value = '';
      notify(`Imported as a new SEG (${imported.seg_uid})`, 'success');
      await show(imported.seg_uid);
    });

  const interpolate = (seg, segment) =>
    attempt('Interpolating', async () => {
      const made = await client.interpolate(series.seriesUid, seg.seg_uid, segment.number);
      notify(`${segment.label ?? `Segment ${segment.number}`}: ${made.added_voxels} voxels filled in a new SEG`, 'success');
      await show(made.seg_uid);
    });

  const review = (seg, status) =>
    attempt('Reviewing', async () => {
      await client.review(seg.seg_uid, status);
      await refresh();
    });

  const remove = seg =>
    attempt('Deleting', async () => {
      await client.deleteSegmentation(seg.seg_uid);
      await refresh();
    });

  const logout = () =>
    attempt('Logging out', async () => {
      await client.logout();
      window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`);
    });

  return (
    <div style={box} data-cy="awesomme-panel">
      <div data-cy="awesomme-user">
        {me ? (
          <>
            Logged in as <b>{me.username}</b>
            {me.platform_admin ? ' (platform admin)' : ''}
            {(me.cohorts ?? []).length > 0 && (
              <span data-cy="awesomme-roles">
                {' · '}
                {me.cohorts.map(cohort => `${cohort.name}: ${cohort.role}`).join(', ')}
              </span>
            )}{' '}
            <button style={button} onClick={logout} data-cy="awesomme-logout">Log out</button>
          </>
        ) : (
          'Checking who is logged in…'
        )}
      </div>
      {busy && <div data-cy="awesomme-busy">{busy}…</div>}
      {!series ? (
        <div style={section}>Open a series to segment it.</div>
      ) : (
        <>
          <div style={section}>
            <b>Models</b> for {series.modality} series
            <div>
              <input
                placeholder="description (optional)"
                value={description}
                onChange={event => setDescription(event.target.value)}
                data-cy="awesomme-description"
                style={{ width: '95%', background: '#111', color: '#ddd', border: '1px solid #345' }}
              />
            </div>
            {models.length === 0 && <div>No model may run on this series for you.</div>}
            {models.map(model => (
              <div key={model.name} data-cy={`awesomme-model-${model.name}`}>
                <button style={button} disabled={!!busy} onClick={() => run(model)} data-cy={`awesomme-run-${model.name}`}>
                  Run {model.name}
                </button>{' '}
                v{model.version} {runtimeText(model.expected_runtime_s)}
                <div style={{ opacity: 0.8 }}>{validationText(model.validation)}</div>
                {model.demo_weights && (
                  <div style={{ color: '#f0b040' }} data-cy="awesomme-demo">
                    DEMO weights, trained on phantoms: not for clinical use.
                  </div>
                )}
              </div>
            ))}
            {lastRun && (
              <div data-cy="awesomme-last-run">
                {lastRun.model}: confidence {lastRun.confidence ?? '–'}
                {lastRun.segments && ` · ${JSON.stringify(lastRun.segments)}`}
              </div>
            )}
          </div>
          <div style={section}>
            <b>Segmentations</b>{' '}
            <button style={button} disabled={!!busy} onClick={save} data-cy="awesomme-save">Save</button>
            {segs.length === 0 && <div>None yet.</div>}
            {segs.map(seg => (
              <div key={seg.seg_uid} data-cy="awesomme-seg" data-seg-uid={seg.seg_uid} style={{ marginTop: '4px' }}>
                <div>
                  {seg.role === 'prediction' ? `${seg.model} v${seg.model_version}` : seg.author || seg.created_by}{' '}
                  · {seg.algorithm_type} · {seg.created_at?.slice(0, 16).replace('T', ' ')}
                  {seg.created_by && <> · by <span data-cy="awesomme-seg-by">{seg.created_by}</span></>}
                </div>
                <div>
                  {(seg.reviews ?? []).map(item => `${item.reviewer}: ${item.status}`).join(', ') || 'not reviewed'}
                </div>
                <button style={button} disabled={!!busy} onClick={() => load(seg)} data-cy="awesomme-load">Load</button>
                <button style={button} disabled={!!busy} onClick={() => review(seg, 'accepted')}>Accept</button>
                <button style={button} disabled={!!busy} onClick={() => review(seg, 'rejected')}>Reject</button>
                {segmentsOf(seg).map(segment => (
                  <button
                    key={segment.number}
                    style={button}
                    disabled={!!busy}
                    onClick={() => interpolate(seg, segment)}
                    data-cy="awesomme-interpolate"
                    title="fill the slices between this segment's segmented slices (a new SEG)"
                  >
                    Interpolate {segment.label ?? segment.number}
                  </button>
                ))}
                {mayDelete(me, seg) && (
                  <button style={button} disabled={!!busy} onClick={() => remove(seg)} data-cy="awesomme-delete">
                    Delete
                  </button>
                )}
              </div>
            ))}
          </div>
          <div style={section} data-cy="awesomme-import">
            <b>Import</b> a segmentation of this series
            <input
              type="file"
              ref={fileInput}
              accept=".nii,.nii.gz,.gz,.nrrd,.seg.nrrd,.dcm,application/dicom"
              onChange={event => setUpload(previous => ({ ...previous, file: event.target.files?.[0] ?? null }))}
              data-cy="awesomme-import-file"
              style={field}
            />
            <input
              placeholder="description (optional)"
              value={upload.description}
              onChange={event => setUpload({ ...upload, description: event.target.value })}
              data-cy="awesomme-import-description"
              style={field}
            />
            <input
              placeholder="segment labels: tumour, or 1=tumour, 2=bone"
              value={upload.labels}
              onChange={event => setUpload({ ...upload, labels: event.target.value })}
              data-cy="awesomme-import-labels"
              style={field}
            />
            <input
              placeholder="reader (who drew it; you, if empty)"
              value={upload.reader}
              onChange={event => setUpload({ ...upload, reader: event.target.value })}
              data-cy="awesomme-import-reader"
              style={field}
            />
            <select
              value={upload.algorithmType}
              onChange={event => setUpload({ ...upload, algorithmType: event.target.value })}
              data-cy="awesomme-import-type"
              style={field}
            >
              {ALGORITHM_TYPES.map(type => (
                <option key={type} value={type}>{type}</option>
              ))}
            </select>
            <button style={button} disabled={!!busy} onClick={importFile} data-cy="awesomme-import-button">
              Import
            </button>
          </div>
        </>
      )}
    </div>
  );
}
