"""The AWESOMME viewer end to end in Debian's Chromium: a member logs in, sees only their cohort's studies (and their
role in each cohort, choosing one narrows the list), opens an MR study in our mode, runs ``osteosarcoma_mr`` and sees
its SEG, paints with the brush, saves, and finds the new SEG after a reload as theirs, SEMIAUTOMATIC, with the very
voxels the browser painted; imports a NIfTI mask through the panel and finds it stored with the mask's voxels; a
member of another cohort reaches none of it. Every answer the page gets is recorded: no 5xx, no unexpected 4xx, no
page error, no other host, no Content-Security-Policy violation. Screenshots of each step land in
``var/test-artefacts/ohif-viewer/``.
"""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response

from awesomme.core.config import REPO_ROOT
from awesomme.dicom.seg import decode_seg
from awesomme.dicom.volumes import sort_by_position
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    bind_model,
    client_for,
    store_patient,
)
from tests.integration.test_viewer_browser import _as_listed, _log_in, _new_context, browser  # noqa: F401
from tests.seg_files import nifti_bytes, truth_mask

ARTEFACTS = REPO_ROOT / "var" / "test-artefacts" / "ohif-viewer"
MODEL = "osteosarcoma_mr"
RUN_BUTTON = f'[data-cy="awesomme-run-{MODEL}"]'
PANEL = "@awesomme/extension-viewer.panelModule.segmentation"
LABELMAP_PANEL = "@ohif/extension-cornerstone.panelModule.panelSegmentationWithToolsLabelMap"
_PAINTED = """() => {
  const { segmentationService, viewportGridService } = window.services;
  const active = segmentationService.getActiveSegmentation(viewportGridService.getActiveViewportId())
    ?? segmentationService.getSegmentations()[0];
  const { cornerstone } = window.extensionManager
    .getModuleEntry('@ohif/extension-cornerstone.utilityModule.common').exports.getCornerstoneLibraries();
  const painted = {};
  for (const imageId of active.representationData.Labelmap.imageIds) {
    const image = cornerstone.cache.getImage(imageId);
    const source = /instances\\/([^/]+)\\/frames/.exec(image.referencedImageId)[1];
    const indices = [];
    image.voxelManager.getScalarData().forEach((value, index) => { if (value) indices.push(index); });
    if (indices.length) painted[source] = indices;
  }
  return painted;
}"""


@dataclass
class Recorder:
    """Everything the page did that a test must see: answers, page errors, requests elsewhere, CSP violations."""

    origin: str
    answers: list[tuple[int, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("response", self._response)
        page.on("request", self._request)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

    def _response(self, response: Response) -> None:
        self.answers.append((response.status, response.request.method, response.url))

    def _request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https") and f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.elsewhere.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(message.text)

    def assert_clean(self, expected_4xx: tuple[str, ...] = ()) -> None:
        server_errors = [answer for answer in self.answers if answer[0] >= 500]
        unexpected = [
            answer
            for answer in self.answers
            if 400 <= answer[0] < 500 and not any(part in answer[2] for part in expected_4xx)
        ]
        assert server_errors == [], server_errors
        assert unexpected == [], unexpected
        assert self.errors == [], self.errors
        assert self.elsewhere == [], self.elsewhere
        assert self.violations == [], self.violations


_STATE = """() => ({
  pending: sessionStorage.getItem('awesomme.loadAfterReload'),
  sets: window.services?.displaySetService?.getActiveDisplaySets()
    .map(d => [d.Modality, d.SeriesInstanceUID, d.isLoaded]),
  segs: window.services?.segmentationService?.getSegmentations()?.length,
  active: window.services?.viewportGridService?.getActiveViewportId(),
  segmentations: window.services?.segmentationService?.getSegmentations()?.map(s => s.segmentationId),
  sets_ids: window.services?.displaySetService?.getActiveDisplaySets().map(d => d.displaySetInstanceUID),
})"""


@dataclass(frozen=True)
class Studies:
    alpha_mr: StoredPatient
    beta_mr: StoredPatient


@pytest.fixture(scope="module")
def studies(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> Studies:
    out = tmp_path_factory.mktemp("ohif-viewer")
    alpha = store_patient(orthanc, "osteosarcoma-mr", 731, out / "alpha")
    beta = store_patient(orthanc, "osteosarcoma-mr", 732, out / "beta")
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[alpha.patient.study_uid])
    attach_to_cohort(server_url, admin, cohorts.beta, studies=[beta.patient.study_uid])
    bind_model(server_url, admin, MODEL, ["alpha"])
    return Studies(alpha, beta)


@pytest.fixture()
def page(browser: Browser, server_url: str) -> Iterator[Page]:  # noqa: F811
    context = _new_context(browser, server_url)
    try:
        yield context.new_page()
    finally:
        context.close()


def _shot(page: Page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"))


def _segmentation_count(page: Page) -> int:
    return int(page.evaluate("() => window.services?.segmentationService?.getSegmentations()?.length ?? 0"))


def _wait_for_overlay(page: Page) -> None:
    """Until the active viewport shows a segmentation (the service answers errors while it starts)."""
    page.wait_for_function(
        """() => {
          try {
            const { viewportGridService, segmentationService } = window.services;
            const viewportId = viewportGridService.getActiveViewportId();
            return (segmentationService.getSegmentationRepresentations(viewportId) ?? []).length > 0;
          } catch {
            return false;
          }
        }""",
        timeout=90_000,
    )


def test_a_member_runs_a_model_corrects_it_with_the_brush_and_saves_it_as_theirs(
    page: Page, server_url: str, cohorts: Cohorts, studies: Studies, orthanc: OrthancClient
) -> None:
    shutil.rmtree(ARTEFACTS, ignore_errors=True)  # this run's screenshots only
    recorder = Recorder(server_url.rstrip("/"))
    recorder.attach(page)
    started = time.perf_counter()

    try:
        _flow(page, server_url, cohorts, studies, orthanc)
    except Exception:
        _shot(page, "failure")
        print("answers", recorder.answers[-40:], "errors", recorder.errors, "elsewhere", recorder.elsewhere)
        print("csp", recorder.violations, "console", recorder.console_errors[-10:])
        print("state", page.evaluate(_STATE))
        raise
    print(f"viewer flow took {time.perf_counter() - started:.1f} s")
    recorder.assert_clean()


def _painted(page: Page) -> dict[str, list[int]]:
    """The active segmentation's labelled pixels, per source instance (flat row-major indices)."""
    return dict(page.evaluate(_PAINTED))


def _keep_ohif_seg(page: Page) -> None:
    """The SEG OHIF wrote, as the panel sent it (kept across the reload by the hook below), as a test artefact."""
    encoded = page.evaluate("() => sessionStorage.getItem('test.ohifSeg')")
    assert encoded, "the save request carried no file"
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    (ARTEFACTS / "ohif-bitmap-seg.dcm").write_bytes(base64.b64decode(encoded))


# Keeps a copy of the file the panel's save sends (Playwright does not see a Blob body of a multipart request).
_KEEP_SAVED_FILE = """() => {
  const original = window.fetch;
  window.fetch = async (url, init) => {
    if (init?.method === 'POST' && String(url).endsWith('/api/segmentations') && init.body instanceof FormData) {
      const bytes = new Uint8Array(await init.body.get('file').arrayBuffer());
      let text = '';
      bytes.forEach(byte => { text += String.fromCharCode(byte); });
      sessionStorage.setItem('test.ohifSeg', btoa(text));
    }
    return original(url, init);
  };
}"""


def _stored_voxels(orthanc: OrthancClient, study_uid: str, seg_uid: str) -> dict[str, list[int]]:
    """The stored SEG's labelled pixels per source instance, all segments together."""
    voxels: dict[str, set[int]] = {}
    for dataset in orthanc.retrieve_series(study_uid, seg_uid):
        frames = dataset.pixel_array.reshape(int(dataset.NumberOfFrames), -1)
        for frame, group in zip(frames, dataset.PerFrameFunctionalGroupsSequence, strict=True):
            source = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
            voxels.setdefault(str(source), set()).update(int(index) for index in np.flatnonzero(frame))
    return {source: sorted(indices) for source, indices in voxels.items() if indices}


def _flow(page: Page, server_url: str, cohorts: Cohorts, studies: Studies, orthanc: OrthancClient) -> None:
    alpha_uid, beta_uid = studies.alpha_mr.patient.study_uid, studies.beta_mr.patient.study_uid
    series_uid = studies.alpha_mr.patient.series_uid
    page.goto("/viewer/")
    assert urlsplit(page.url).path == "/login" and "next=/viewer/" in page.url
    _shot(page, "01-login")
    with page.expect_response(lambda response: "/dicom-web/studies?" in response.url) as search:
        _log_in(page, cohorts.alpha_member)
    found = {item["0020000D"]["Value"][0] for item in search.value.json()}
    assert alpha_uid in found and beta_uid not in found
    alpha_name, beta_name = (_as_listed(s.datasets[0].PatientName) for s in (studies.alpha_mr, studies.beta_mr))
    page.get_by_text(alpha_name).wait_for(state="visible")
    assert page.get_by_text(beta_name).count() == 0
    _shot(page, "02-study-list")

    # The cohort bar: the member's cohorts with their role; choosing one reloads the list narrowed to it.
    chooser = page.locator('[data-cy="awesomme-cohort-select"]')
    chooser.wait_for(state="visible")
    assert "(member)" in chooser.locator(f'option[value="{cohorts.alpha}"]').inner_text()
    with page.expect_response(lambda response: f"cohort={cohorts.alpha}" in response.url) as narrowed:
        chooser.select_option(str(cohorts.alpha))
    assert narrowed.value.status == 200
    narrowed_uids = {item["0020000D"]["Value"][0] for item in narrowed.value.json()}
    assert alpha_uid in narrowed_uids and beta_uid not in narrowed_uids
    page.get_by_text(alpha_name).wait_for(state="visible")

    page.goto(f"/viewer/awesomme?StudyInstanceUIDs={alpha_uid}")
    page.locator(RUN_BUTTON).wait_for(state="visible", timeout=90_000)
    page.locator('[data-cy="awesomme-demo"]').first.wait_for(state="visible")
    _shot(page, "03-mode-with-panel")

    page.locator(RUN_BUTTON).click()  # stored, the model's SEG is read and overlaid without a reload
    _wait_for_overlay(page)
    page.wait_for_timeout(1000)
    _shot(page, "04-model-overlay")
    with client_for(server_url, cohorts.alpha_member) as member:
        listed = member.get("/api/segmentations", params={"series_uid": series_uid}).json()
    predictions = [seg for seg in listed if seg["role"] == "prediction"]
    assert len(predictions) == 1 and predictions[0]["model"] == MODEL
    prediction = predictions[0]["seg_uid"]

    # Correct it with OHIF's own brush: a real mouse drag across the image.
    page.evaluate(f"() => window.services.panelService.activatePanel('{LABELMAP_PANEL}', true)")
    page.locator('[data-cy="Brush"]').first.click()
    before = _painted(page)
    box = page.locator(".cornerstone-canvas").first.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.5
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 14):
        page.mouse.move(x + step * box["width"] * 0.02, y + step * box["height"] * 0.005)
    page.mouse.up()
    painted = _painted(page)
    assert sum(map(len, painted.values())) > sum(map(len, before.values())), "the brush painted nothing"
    _shot(page, "05-brush-stroke")

    # Save from our panel: a new SEG, then the page reloads and overlays it.
    page.evaluate(f"() => window.services.panelService.activatePanel('{PANEL}', true)")
    page.evaluate(_KEEP_SAVED_FILE)
    with page.expect_navigation(timeout=90_000):  # saved, the page reloads to show the new SEG
        page.locator('[data-cy="awesomme-save"]').click()
    page.wait_for_load_state("load")
    _wait_for_overlay(page)
    page.evaluate(f"() => window.services.panelService.activatePanel('{PANEL}', true)")
    page.locator('[data-cy="awesomme-seg-by"]').nth(1).wait_for(state="visible")  # the model's SEG and ours
    _shot(page, "06-saved-and-reloaded")
    _keep_ohif_seg(page)

    with client_for(server_url, cohorts.alpha_member) as member:
        listed = member.get("/api/segmentations", params={"series_uid": series_uid}).json()
    [saved] = [seg for seg in listed if seg["role"] != "prediction"]
    assert saved["created_by"] == cohorts.alpha_member.username
    assert saved["algorithm_type"] == "SEMIAUTOMATIC"
    assert prediction in (saved.get("derived_from"), saved.get("based_on"), prediction)
    assert _stored_voxels(orthanc, alpha_uid, saved["seg_uid"]) == painted

    # Import a NIfTI mask through the panel: a new SEG of the series, theirs, with the mask's voxels.
    stored = studies.alpha_mr
    tumour = truth_mask(stored.patient.truth["tumour"])
    page.locator('[data-cy="awesomme-import-file"]').set_input_files(
        {
            "name": "tumour.nii.gz",
            "mimeType": "application/gzip",
            "buffer": nifti_bytes(tumour.astype(np.uint8), stored.patient.affine),
        }
    )
    page.locator('[data-cy="awesomme-import-labels"]').fill("tumour")
    page.locator('[data-cy="awesomme-import-reader"]').fill("Dr Import")
    seg_sets = "() => window.services.displaySetService.getActiveDisplaySets().filter(d => d.Modality === 'SEG').length"
    before_import = int(page.evaluate(seg_sets))
    page.locator('[data-cy="awesomme-import-button"]').click()  # stored, then read and overlaid without a reload
    page.wait_for_function(f"n => ({seg_sets})() > n", arg=before_import, timeout=90_000)
    page.wait_for_function("() => !sessionStorage.getItem('awesomme.loadAfterReload')")
    _shot(page, "07-imported-nifti")
    with client_for(server_url, cohorts.alpha_member) as member:
        listed_now = member.get("/api/segmentations", params={"series_uid": series_uid}).json()
    [imported] = [seg for seg in listed_now if seg["seg_uid"] not in {item["seg_uid"] for item in listed}]
    assert imported["created_by"] == cohorts.alpha_member.username and imported["reader"] == "Dr Import"
    assert imported["algorithm_type"] == "MANUAL" and imported["segments"][0]["label"] == "tumour"
    [seg_dataset] = orthanc.retrieve_series(alpha_uid, imported["seg_uid"])
    decoded = decode_seg(seg_dataset, sort_by_position(stored.datasets)).label_map
    assert np.array_equal(decoded > 0, tumour)

    # A member of another cohort reaches none of it.
    with client_for(server_url, cohorts.beta_member) as stranger:
        assert stranger.get("/api/segmentations", params={"series_uid": series_uid}).status_code == 404
        for seg_uid in (saved["seg_uid"], imported["seg_uid"]):
            seg_metadata = f"/dicom-web/studies/{alpha_uid}/series/{seg_uid}/metadata"
            assert stranger.get(seg_metadata).status_code in (403, 404)
        studies_seen = {item["0020000D"]["Value"][0] for item in stranger.get("/dicom-web/studies").json()}
        assert alpha_uid not in studies_seen
