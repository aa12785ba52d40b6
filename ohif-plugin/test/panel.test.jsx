import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SegmentationPanel } from '../src/panels/SegmentationPanel.jsx';

const MR = { displaySetInstanceUID: 'ds-mr', Modality: 'MR', StudyInstanceUID: 'st', SeriesInstanceUID: 'se' };
const MODEL = {
  name: 'osteosarcoma_mr', version: '0.1.0', demo_weights: true,
  expected_runtime_s: { cpu: 1.5 }, validation: { dice: 0.912 },
};
const PREDICTION = {
  seg_uid: 'pred', role: 'prediction', model: 'osteosarcoma_mr', model_version: '0.1.0', algorithm_type: 'AUTOMATIC',
  created_at: '2026-12-08T01:00:00+00:00', created_by: 'ann', reviews: [],
  segments: [{ number: 1, label: 'tumour', volume_ml: 1.2 }],
  cohorts: [{ id: 1, name: 'Sarcoma', role: 'member' }],
};

function services({ active = null } = {}) {
  const show = vi.fn();
  return {
    show,
    servicesManager: {
      services: {
        uiNotificationService: { show },
        viewportGridService: { getActiveViewportId: () => 'vp', getDisplaySetsUIDsForViewport: () => ['ds-mr'] },
        displaySetService: {
          getDisplaySetByUID: uid => (uid === 'ds-mr' ? MR : uid === 'ds-pred' ? { Modality: 'SEG', SeriesInstanceUID: 'pred' } : undefined),
          getActiveDisplaySets: () => [MR],
        },
        segmentationService: { getActiveSegmentation: () => active, getSegmentations: () => (active ? [active] : []) },
      },
    },
  };
}

function fakeClient(overrides = {}) {
  return {
    me: vi.fn(async () => ({ username: 'ann', platform_admin: false, cohorts: [] })),
    models: vi.fn(async () => [MODEL]),
    segmentations: vi.fn(async () => [PREDICTION]),
    runModel: vi.fn(async () => ({ params: { seg_series_uid: 'new', confidence: 0.9 } })),
    saveSegmentation: vi.fn(async () => ({ seg_uid: 'saved', segments: 1 })),
    review: vi.fn(async () => ({})),
    deleteSegmentation: vi.fn(async () => ({})),
    importSegmentation: vi.fn(async () => ({ seg_uid: 'imported', series_uid: 'se', format: 'nifti' })),
    interpolate: vi.fn(async () => ({ seg_uid: 'filled', added_voxels: 42 })),
    logout: vi.fn(async () => null),
    ...overrides,
  };
}

afterEach(() => {
  cleanup();
  window.sessionStorage.clear();
});

describe('the Segmentation panel', () => {
  it('shows who is logged in, the models usable on the open series with run time, validation and DEMO notice', async () => {
    const { servicesManager } = services();
    const client = fakeClient();
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{}} client={client} pollMs={60000} />);
    await screen.findByText(/Run osteosarcoma_mr/);
    await waitFor(() => expect(document.querySelector('[data-cy="awesomme-user"]').textContent).toContain('Logged in as ann'));
    expect(client.models).toHaveBeenCalledWith('se');
    expect(client.segmentations).toHaveBeenCalledWith('se');
    expect(screen.getByText(/~1.5 s on cpu/)).toBeTruthy();
    expect(screen.getByText(/dice 0.912/)).toBeTruthy();
    expect(screen.getByText(/DEMO weights/)).toBeTruthy();
  });

  it('runs a model on the open series, then reloads to overlay the SEG it stored', async () => {
    const { servicesManager } = services();
    const client = fakeClient();
    const reload = vi.fn();
    Object.defineProperty(window, 'location', { value: { ...window.location, reload }, configurable: true });
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{}} client={client} pollMs={60000} />);
    fireEvent.click(await screen.findByText(/Run osteosarcoma_mr/));
    await waitFor(() => expect(reload).toHaveBeenCalled());
    expect(client.runModel).toHaveBeenCalledWith('osteosarcoma_mr', 'se', '');
    expect(window.sessionStorage.getItem('awesomme.loadAfterReload')).toBe('new');
  });

  it('shows every refusal as a notification', async () => {
    const { servicesManager, show } = services();
    const client = fakeClient({ runModel: vi.fn(async () => { throw new Error('POST /infer/osteosarcoma_mr: 403 not bound'); }) });
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{}} client={client} pollMs={60000} />);
    fireEvent.click(await screen.findByText(/Run osteosarcoma_mr/));
    await waitFor(() => expect(show).toHaveBeenCalled());
    expect(show.mock.calls[0][0]).toMatchObject({ type: 'error', message: expect.stringContaining('403 not bound') });
  });

  it('saves an edit of a prediction as a new SEG based on it', async () => {
    const { servicesManager } = services({ active: { segmentationId: 'ds-pred' } });
    const client = fakeClient();
    const runCommand = vi.fn(() => ({ dataset: null }));
    Object.defineProperty(window, 'location', { value: { ...window.location, reload: vi.fn() }, configurable: true });
    const { show } = services();
    servicesManager.services.uiNotificationService = { show };
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{ runCommand }} client={client} pollMs={60000} />);
    await screen.findByText(/osteosarcoma_mr v0.1.0 ·/);
    await act(async () => fireEvent.click(screen.getByText('Save')));
    await waitFor(() => expect(runCommand).toHaveBeenCalled());
    expect(runCommand.mock.calls[0][0]).toBe('generateSegmentation');
    expect(runCommand.mock.calls[0][1].segmentationId).toBe('ds-pred');
    // No dataset came back: nothing is sent, the user is told.
    expect(client.saveSegmentation).not.toHaveBeenCalled();
    expect(show.mock.calls.at(-1)[0].message).toContain('no SEG');
  });

  it('lets the author delete their own SEG and anyone review it', async () => {
    const { servicesManager } = services();
    const client = fakeClient();
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{}} client={client} pollMs={60000} />);
    fireEvent.click(await screen.findByText('Accept'));
    await waitFor(() => expect(client.review).toHaveBeenCalledWith('pred', 'accepted'));
    fireEvent.click(await screen.findByText('Delete'));
    await waitFor(() => expect(client.deleteSegmentation).toHaveBeenCalledWith('pred'));
  });

  it('when the session has ended, opens the login page in another tab and keeps this one (and its edits)', async () => {
    const { servicesManager, show } = services();
    const expired = Object.assign(new Error('GET /api/models: 401 log in first'), { status: 401 });
    const client = fakeClient({ runModel: vi.fn(async () => { throw expired; }) });
    const open = vi.spyOn(window, 'open').mockImplementation(() => null);
    const reload = vi.fn();
    Object.defineProperty(window, 'location', { value: { ...window.location, reload }, configurable: true });
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{}} client={client} pollMs={60000} />);
    fireEvent.click(await screen.findByText(/Run osteosarcoma_mr/));
    await waitFor(() => expect(open).toHaveBeenCalledWith('/login?next=/viewer/', '_blank'));
    expect(reload).not.toHaveBeenCalled();
    expect(show.mock.calls.at(-1)[0].message).toContain('session has ended');
  });

  it('imports the chosen file with its metadata for the open series, then reloads to overlay the new SEG', async () => {
    const { servicesManager, show } = services();
    const client = fakeClient();
    const reload = vi.fn();
    Object.defineProperty(window, 'location', { value: { ...window.location, reload }, configurable: true });
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{}} client={client} pollMs={60000} />);
    await screen.findByText(/osteosarcoma_mr v0.1.0 ·/);
    const file = new File([new Uint8Array([1, 2])], 'mask.nii.gz');
    fireEvent.change(document.querySelector('[data-cy="awesomme-import-file"]'), { target: { files: [file] } });
    fireEvent.change(document.querySelector('[data-cy="awesomme-import-labels"]'), { target: { value: 'tumour' } });
    fireEvent.change(document.querySelector('[data-cy="awesomme-import-reader"]'), { target: { value: 'Dr Who' } });
    fireEvent.change(document.querySelector('[data-cy="awesomme-import-type"]'), { target: { value: 'SEMIAUTOMATIC' } });
    fireEvent.click(screen.getByText('Import', { selector: 'button' }));
    await waitFor(() => expect(reload).toHaveBeenCalled());
    expect(client.importSegmentation).toHaveBeenCalledWith({
      seriesUid: 'se', file, description: '', labels: 'tumour', algorithmType: 'SEMIAUTOMATIC', reader: 'Dr Who',
    });
    expect(window.sessionStorage.getItem('awesomme.loadAfterReload')).toBe('imported');
    expect(show.mock.calls.at(-1)[0]).toMatchObject({ type: 'success', message: expect.stringContaining('imported') });
  });

  it('asks for a file before importing, and shows the server\'s refusal of an import as a notification', async () => {
    const { servicesManager, show } = services();
    const refused = new Error('POST /api/segmentations/import: 422 the mask\'s geometry does not match the series');
    const client = fakeClient({ importSegmentation: vi.fn(async () => { throw refused; }) });
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{}} client={client} pollMs={60000} />);
    await screen.findByText(/osteosarcoma_mr v0.1.0 ·/);
    fireEvent.click(screen.getByText('Import', { selector: 'button' }));
    await waitFor(() => expect(show).toHaveBeenCalled());
    expect(show.mock.calls.at(-1)[0]).toMatchObject({ type: 'warning', message: expect.stringContaining('Choose') });
    expect(client.importSegmentation).not.toHaveBeenCalled();
    fireEvent.change(document.querySelector('[data-cy="awesomme-import-file"]'), {
      target: { files: [new File([1], 'bad.nii')] },
    });
    fireEvent.click(screen.getByText('Import', { selector: 'button' }));
    await waitFor(() => expect(show.mock.calls.at(-1)[0].message).toContain('422 the mask'));
    expect(show.mock.calls.at(-1)[0].type).toBe('error');
  });

  it('interpolates a listed SEG\'s segment and overlays the new SEG; a refusal is shown', async () => {
    const { servicesManager, show } = services();
    const client = fakeClient();
    const reload = vi.fn();
    Object.defineProperty(window, 'location', { value: { ...window.location, reload }, configurable: true });
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{}} client={client} pollMs={60000} />);
    fireEvent.click(await screen.findByText('Interpolate tumour'));
    await waitFor(() => expect(reload).toHaveBeenCalled());
    expect(client.interpolate).toHaveBeenCalledWith('se', 'pred', 1);
    expect(window.sessionStorage.getItem('awesomme.loadAfterReload')).toBe('filled');
    expect(show.mock.calls.at(-1)[0].message).toContain('42 voxels');
    client.interpolate.mockRejectedValueOnce(new Error('POST /api/segmentations/interpolate: 422 segment 1 has no gap'));
    fireEvent.click(screen.getByText('Interpolate tumour'));
    await waitFor(() => expect(show.mock.calls.at(-1)[0]).toMatchObject({ type: 'error', message: expect.stringContaining('no gap') }));
  });

  it('offers Delete only on SEGs the user stored or in a cohort they administer', async () => {
    const { servicesManager } = services();
    const other = { ...PREDICTION, seg_uid: 'bob', created_by: 'bob' };
    const client = fakeClient({ segmentations: vi.fn(async () => [other]) });
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{}} client={client} pollMs={60000} />);
    await screen.findByText('Interpolate tumour');
    await waitFor(() => expect(document.querySelector('[data-cy="awesomme-user"]').textContent).toContain('ann'));
    expect(screen.queryByText('Delete')).toBeNull();
    cleanup();
    const administered = { ...other, cohorts: [{ id: 1, name: 'Sarcoma', role: 'admin' }] };
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{}}
      client={fakeClient({ segmentations: vi.fn(async () => [administered]) })} pollMs={60000} />);
    expect(await screen.findByText('Delete')).toBeTruthy();
  });

  it('shows a model\'s new SEG without a reload: reads only that series (the study cache entry dropped) and overlays it', async () => {
    const { servicesManager } = services();
    const sets = [MR];
    servicesManager.services.displaySetService.getActiveDisplaySets = () => sets;
    const overlaid = [];
    servicesManager.services.segmentationService = {
      getActiveSegmentation: () => null, getSegmentations: () => [], setActiveSegmentation: vi.fn(),
      getSegmentationRepresentations: () => overlaid,
      addSegmentationRepresentation: vi.fn(async (viewportId, { segmentationId }) => overlaid.push(segmentationId)),
    };
    const dataSource = {
      getConfig: () => ({ name: 'awesomme' }),
      deleteStudyMetadataPromise: vi.fn(),
      retrieve: { series: { metadata: vi.fn(async () => {
        sets.push({ Modality: 'SEG', SeriesInstanceUID: 'new', displaySetInstanceUID: 'ds-new', isLoaded: true });
      }) } },
    };
    const extensionManager = { getActiveDataSource: () => [dataSource] };
    const runCommand = vi.fn(async () => undefined);
    const reload = vi.fn();
    Object.defineProperty(window, 'location', { value: { ...window.location, reload }, configurable: true });
    const client = fakeClient();
    render(<SegmentationPanel servicesManager={servicesManager} commandsManager={{ runCommand }}
      extensionManager={extensionManager} client={client} pollMs={60000} />);
    fireEvent.click(await screen.findByText(/Run osteosarcoma_mr/));
    await waitFor(() => expect(overlaid).toEqual(['ds-new']));
    expect(dataSource.deleteStudyMetadataPromise).toHaveBeenCalledWith('awesomme:st');
    expect(dataSource.retrieve.series.metadata).toHaveBeenCalledWith({ StudyInstanceUID: 'st', filters: { seriesInstanceUID: ['new'] } });
    expect(runCommand).toHaveBeenCalledWith('hydrateSecondaryDisplaySet', expect.objectContaining({ viewportId: 'vp' }));
    expect(reload).not.toHaveBeenCalled();
    await waitFor(() => expect(client.segmentations).toHaveBeenCalledTimes(2)); // the list shows the new SEG
  });

  it('falls back to a reload when the viewer does not learn of the new SEG', async () => {
    const { servicesManager } = services();
    const dataSource = {
      deleteStudyMetadataPromise: vi.fn(), retrieve: { series: { metadata: vi.fn(async () => []) } },
    };
    const { showNewSeg } = await import('../src/api/viewer.js');
    const shownNow = await showNewSeg(servicesManager, {}, { getActiveDataSource: () => [dataSource] }, 'st', 'new', 200);
    expect(shownNow).toBe(false);
    expect(dataSource.deleteStudyMetadataPromise).toHaveBeenCalledTimes(2);
    expect(await showNewSeg(servicesManager, {}, undefined, 'st', 'new')).toBe(false);
  });
});
