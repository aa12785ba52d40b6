"""MONAI Label's ``Datastore`` contract on Orthanc.

Image ids are SeriesInstanceUIDs of CT and MR series; label ids are SeriesInstanceUIDs of DICOM SEGs. Listings
ask Orthanc every time (a QIDO-RS search costs milliseconds), so a series or label stored a moment ago is seen
at once. Which SEG is a label of which series lives in the platform DB: only SEGs saved as labels count as
labels; SEGs a model produces are predictions. Decoded series and labels are cached as NIfTI files for MONAI's
loaders, bounded and invalidated when Orthanc's copy changes.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import shutil
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import nibabel as nib
import numpy as np
import pydicom
from highdicom.seg import SegmentAlgorithmTypeValues
from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from pydicom import Dataset
from pydicom.errors import InvalidDicomError
from sqlalchemy import select
from sqlalchemy.orm import Session

from awesomme.core import audit
from awesomme.core.db import session_scope
from awesomme.core.errors import InvalidInput, NotFound
from awesomme.core.visibility import Visibility, current_visibility
from awesomme.dicom.label_files import read_label_file
from awesomme.dicom.seg import SegContent, decode_seg, encode_seg, seg_content
from awesomme.dicom.segmentation_files import SourceFile
from awesomme.dicom.volumes import Volume, grid_from_datasets, sort_by_position, volume_from_datasets
from awesomme.models import Segmentation, SegmentationOperation, SegmentationRole
from awesomme.orthanc.cache import SeriesCache
from awesomme.orthanc.client import IMAGE_MODALITIES, OrthancClient, SeriesState
from awesomme.orthanc.headers import SeriesHeaders, without_pixels
from awesomme.orthanc.visible import forget_series, series_state, visible_series_state

__all__ = ["OrthancDatastore", "find_label"]

logger = logging.getLogger(__name__)
# The tag of the platform's predictions (MONAI Label's tag for a model's output); a client's label with it is a label.
PREDICTION_TAG = DefaultLabelTag.ORIGINAL.value


def find_label(session: Session, label_id: str, label_tag: str = "") -> Segmentation | None:
    """A SEG's record by its series UID; with a tag, also as stock MONAI Label names a label: by its image's id, the
    newest SEG of that tag (a model's output has the tag ``original``: what 3D Slicer's module loads as the
    "original label"). Used by the access check and the datastore alike, so what is checked is what is served."""
    record = session.get(Segmentation, label_id)
    if record is None and label_tag:
        newest = (
            select(Segmentation)
            .where(Segmentation.source_series_uid == label_id, Segmentation.tag == label_tag)
            .order_by(Segmentation.created_at.desc())
            .limit(1)
        )
        record = session.scalars(newest).first()
    return record


def _visibility() -> Visibility:
    """What the current caller may see: set per request by the access middleware, and per job for its scope.

    Unset (a thread or job that did not name its scope), it is nothing: visibility fails closed.
    """
    return current_visibility.get()


class SegWriter(Protocol):
    """How SEGs are stored and removed (``awesomme.services.seg_store.SegStore``, given by the app)."""

    def store(
        self,
        seg: Dataset,
        record: Segmentation,
        operation: str,
        *,
        params: Mapping[str, Any] | None = None,
        source_file: SourceFile | None = None,
    ) -> str: ...

    def remove(self, record: Segmentation, *, params: Mapping[str, Any] | None = None) -> None: ...


class OrthancDatastore(Datastore):
    def __init__(
        self,
        client: OrthancClient,
        cache: SeriesCache,
        seg_store: SegWriter,
        upload_max_bytes: int,
        name: str = "Orthanc",
        description: str = "",
    ) -> None:
        self.client = client
        self.cache = cache
        self.seg_store = seg_store
        self._headers = SeriesHeaders()
        # Compressed copies for downloads, beside the decoded series (a folder no series UID can be named), within
        # the same bound: a quarter of it is theirs.
        share = cache.max_bytes // 4
        cache.max_bytes -= share
        self.downloads = SeriesCache(cache.directory / "downloads", max(share, 1), suffix=".nii.gz")
        self.upload_max_bytes = upload_max_bytes
        self._name = name
        self._description = description

    # -- names ------------------------------------------------------------------------------------------------
    def name(self) -> str:
        return self._name

    def set_name(self, name: str) -> None:
        self._name = name

    def description(self) -> str:
        return self._description

    def set_description(self, description: str) -> None:
        self._description = description

    # -- listings ---------------------------------------------------------------------------------------------
    def _image_series(self) -> dict[str, Dataset]:
        visible = _visibility()
        return {
            str(hit.SeriesInstanceUID): hit
            for hit in self.client.find_series(IMAGE_MODALITIES)
            if visible.sees_series(str(hit.StudyInstanceUID), str(hit.SeriesInstanceUID))
        }

    def _seg_uids(self) -> set[str]:
        return {str(hit.SeriesInstanceUID) for hit in self.client.find_series(("SEG",))}

    def _labels(self, tag: str | None = None, *, predictions: bool = False) -> list[Segmentation]:
        """Label records (and predictions' too, if asked) whose SEG is still in Orthanc, oldest first."""
        query = select(Segmentation)
        if not predictions:
            query = query.where(Segmentation.role == SegmentationRole.LABEL)
        if tag:
            query = query.where(Segmentation.tag == tag)
        with session_scope() as session:
            records = list(session.scalars(query.order_by(Segmentation.created_at)))
        present = self._seg_uids() if records else set()
        return [record for record in records if record.seg_series_uid in present]

    def list_images(self) -> list[str]:
        return sorted(self._image_series())

    def get_labeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        images = self._image_series()
        tag = label_tag or DefaultLabelTag.FINAL.value
        return sorted({r.source_series_uid for r in self._labels(tag) if r.source_series_uid in images})

    def get_unlabeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        labeled = set(self.get_labeled_images(label_tag, labels))
        return [uid for uid in self.list_images() if uid not in labeled]

    def get_labels_by_image_id(self, image_id: str) -> dict[str, str]:
        latest: dict[str, str] = {}
        for record in self._labels():
            if record.source_series_uid == image_id:
                latest[record.tag] = record.seg_series_uid  # ordered by time: the newest wins
        return latest

    def get_label_by_image_id(self, image_id: str, tag: str) -> str:
        return self.get_labels_by_image_id(image_id).get(tag, "")

    # -- images -----------------------------------------------------------------------------------------------
    def image_state(self, image_id: str) -> SeriesState:
        state = visible_series_state(self.client, _visibility(), image_id)  # absent and not yours read the same
        if state.modality not in IMAGE_MODALITIES:
            raise NotFound(f"series {image_id} is {state.modality or 'of no modality'}, not a CT or MR image")
        return state

    def get_image(self, image_id: str, params: Any = None) -> Any:
        return self.get_image_uri(image_id)

    def get_image_uri(self, image_id: str) -> str:
        """What ``GET /datastore/image`` serves: the series as a gzip-compressed NIfTI (``<id>.nii.gz`` to clients)."""
        return str(self.compressed_image(image_id))

    def compressed_image(self, image_id: str) -> Path:
        """The series as a gzip-compressed NIfTI, cached per version; the same bytes each time it is made (no
        time stamp in the gzip header), so a checksum given with a sample holds even if the cache was emptied."""
        state = self.image_state(image_id)

        def compress(path: Path) -> None:
            source, _ = self._cached_series(state)
            with (
                source.open("rb") as raw,
                path.open("wb") as out,
                gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=1, mtime=0) as packed,
            ):
                shutil.copyfileobj(raw, packed, 1024**2)

        return self.downloads.get(state.series_uid, state.version, compress)

    def image_checksum(self, image_id: str) -> str:
        """``SHA256:<hex>`` of exactly the bytes ``GET /datastore/image`` serves (MONAI Label's checksum form)."""
        digest = hashlib.sha256()
        with self.compressed_image(image_id).open("rb") as handle:
            for chunk in iter(lambda: handle.read(1024**2), b""):
                digest.update(chunk)
        return f"SHA256:{digest.hexdigest()}"

    def _cached_series(self, state: SeriesState) -> tuple[Path, Volume | None]:
        """The series decoded as a NIfTI file, through the cache: the one place a series is fetched and decoded.
        On a miss, also the volume just decoded (so that it is not read back from disk)."""
        decoded: list[Volume] = []

        def decode(path: Path) -> None:
            datasets = self.client.retrieve_series(state.study_uid, state.series_uid)
            decoded.append(volume_from_datasets(datasets))
            # what a SEG of this series references, at hand: no second read from Orthanc during the forward pass
            self._headers.keep(state, sort_by_position([without_pixels(ds) for ds in datasets]))
            decoded[0].to_nifti(path)

        path = self.cache.get(state.series_uid, state.version, decode)
        return path, decoded[0] if decoded else None

    def get_image_info(self, image_id: str) -> dict[str, Any]:
        state = self.image_state(image_id)
        return {
            "SeriesInstanceUID": image_id,
            "StudyInstanceUID": state.study_uid,
            "Modality": state.modality,
            "instances": state.instance_count,
            "version": state.version,
        }

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        """Store an uploaded DICOM file, or a ZIP of the instances of one series; returns its SeriesInstanceUID."""
        with _removed_on_error(image_filename):
            return self._add_image(image_filename)

    def _add_image(self, image_filename: str) -> str:
        datasets = _read_dicom_upload(Path(image_filename), self.upload_max_bytes)
        series_uids = {str(ds.SeriesInstanceUID) for ds in datasets}
        if len(series_uids) != 1:
            raise InvalidInput(f"the upload holds {len(series_uids)} series; send one series at a time")
        if any(str(getattr(ds, "Modality", "")) not in IMAGE_MODALITIES for ds in datasets):
            raise InvalidInput("only CT and MR images can be added as images")
        sort_by_position(datasets)
        self.client.store(datasets)
        return series_uids.pop()

    def remove_image(self, image_id: str) -> None:
        self.image_state(image_id)
        for tag, seg_uid in self.get_labels_by_image_id(image_id).items():
            self.remove_label(seg_uid, tag)
        self.client.delete_series(image_id)
        forget_series(image_id)
        self.cache.invalidate(image_id)

    def update_image_info(self, image_id: str, info: dict[str, Any]) -> None:
        raise InvalidInput("image information comes from the DICOM headers in Orthanc and cannot be edited here")

    # -- labels -----------------------------------------------------------------------------------------------
    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        """Write the label file as a DICOM SEG referencing the series, store it in Orthanc, record it.

        Always a person's label, drawn by the logged-in user, whatever its tag or ``model`` (only the platform's
        inference makes predictions); a client's ``author`` or ``user`` is ignored."""
        with _removed_on_error(label_filename):
            return self._save_label(image_id, label_filename, label_tag, label_info)

    def save_declared_label(
        self, image_id: str, label_filename: str, label_tag: str, reader: str, segment_label: str
    ) -> str:
        """A one-segment label whose drawer is declared (the platform's own, e.g. a phantom's ground truth)."""
        info = {"label_info": [{"name": segment_label, "idx": 1}]}
        with _removed_on_error(label_filename):
            return self._save_label(image_id, label_filename, label_tag, info, reader=reader)

    def _save_label(
        self,
        image_id: str,
        label_filename: str,
        label_tag: str,
        label_info: dict[str, Any],
        reader: str | None = None,
    ) -> str:
        state = self.image_state(image_id)
        source = self.source_metadata(state)
        grid = grid_from_datasets(source)
        content = seg_content(read_label_file(Path(label_filename), grid), _segment_labels(label_info))
        tag = label_tag or DefaultLabelTag.FINAL.value
        author = reader or audit.acting_user()
        corrected = self._corrected_prediction(image_id, label_info)
        if corrected:
            algorithm_type = SegmentAlgorithmTypeValues.SEMIAUTOMATIC
            note = f" correcting {corrected.model_name} {corrected.seg_series_uid}"
        else:
            algorithm_type, note = SegmentAlgorithmTypeValues.MANUAL, ""
        model = corrected.model_name if corrected else None
        demo = bool(corrected and corrected.demo_weights)  # a correction of a demo model's output stays marked
        seg = encode_seg(
            source,
            content,
            algorithm_type=algorithm_type,
            series_description=f"Label ({tag})",
            content_description=f"label {tag}{note}",
            author=author,
            algorithm_name=model,
            algorithm_version=(corrected.model_version or "") if corrected else "",
            demo=demo,
        )
        record = Segmentation(
            source_series_uid=image_id,
            study_uid=state.study_uid,
            role=SegmentationRole.LABEL,
            tag=tag,
            author=author,
            reader=reader,
            algorithm_type=algorithm_type.value,
            model_name=model,
            segments=content.summary(grid.voxel_volume_ml),
            derived_from=corrected.seg_series_uid if corrected else None,
            demo_weights=demo,
        )
        return self.seg_store.store(seg, record, SegmentationOperation.LABEL)

    def _corrected_prediction(self, image_id: str, label_info: dict[str, Any]) -> Segmentation | None:
        """The prediction a label corrects: ``based_on`` (it must be one, of this very series); else the newest
        prediction of the series by the ``model`` the client names; else, with no ``model``, the newest prediction
        of the series the same user ran (what the viewer showed them). None: drawn by hand."""
        based_on = label_info.get("based_on")
        if based_on:
            record = self._label_record(str(based_on))
            if record.role != SegmentationRole.PREDICTION or record.source_series_uid != image_id:
                raise InvalidInput(f"based_on {based_on} is not a prediction of series {image_id}")
            return record
        model = label_info.get("model")
        if model is not None and not isinstance(model, str):
            raise InvalidInput("model must be a model's name")
        query = select(Segmentation).where(
            Segmentation.source_series_uid == image_id, Segmentation.role == SegmentationRole.PREDICTION
        )
        if model:
            query = query.where(Segmentation.model_name == model)
        else:
            query = query.where(Segmentation.created_by == audit.acting_user())
        with session_scope() as session:  # the store removes a SEG's record with it: no need to ask Orthanc
            return session.scalars(query.order_by(Segmentation.created_at.desc()).limit(1)).first()

    def source_metadata(self, state: SeriesState) -> list[Dataset]:
        """The series' instances without pixel data, ordered along the slice normal (enough to reference them):
        those kept from this version's last decode, else read from Orthanc."""
        headers = self._headers.get(state)
        if headers is None:
            headers = sort_by_position(self.client.retrieve_series_metadata(state.study_uid, state.series_uid))
            self._headers.keep(state, headers)
        return headers

    def load_volume(self, state: SeriesState) -> Volume:
        """The decoded series, through the cache; on a miss, the volume just decoded (not read back from disk)."""
        path, decoded = self._cached_series(state)
        if decoded is not None:
            return decoded
        image = nib.load(path)
        assert isinstance(image, nib.Nifti1Image)
        array = np.ascontiguousarray(np.asanyarray(image.dataobj).transpose(2, 1, 0))
        return Volume(array, image.affine, state.series_uid, state.modality)

    def segmentations_of(self, image_id: str) -> list[Segmentation]:
        """Every SEG of a series still in Orthanc, labels and predictions, oldest first."""
        with session_scope() as session:
            records = list(
                session.scalars(
                    select(Segmentation)
                    .where(Segmentation.source_series_uid == image_id)
                    .order_by(Segmentation.created_at)
                )
            )
        present = self._seg_uids() if records else set()
        return [record for record in records if record.seg_series_uid in present]

    def _label_record(self, label_id: str, label_tag: str = "") -> Segmentation:
        with session_scope() as session:
            record = find_label(session, label_id, label_tag)
        if record is None or not _visibility().sees_series(record.study_uid, record.source_series_uid):
            raise NotFound(
                f"no segmentation {label_id}"
                + (f" and no {label_tag} label of an image {label_id}" if label_tag else "")
            )
        return record

    def get_label(self, label_id: str, label_tag: str, params: Any = None) -> Any:
        return self.get_label_uri(label_id, label_tag)

    def get_label_uri(self, label_id: str, label_tag: str) -> str:
        return str(self._cached_label(self._label_record(label_id, label_tag)))

    def _cached_label(self, record: Segmentation) -> Path:
        """The SEG decoded on its series' grid as a NIfTI label map (values: segment numbers), through the cache:
        the one place a stored SEG is fetched from Orthanc and decoded. A stored SEG never changes (a STOW never
        overwrites, every SEG gets new UIDs): its SOP Instance UID versions the cached copy, with no lookup."""

        def decode(path: Path) -> None:
            source = self.source_metadata(series_state(self.client, record.source_series_uid))
            seg = self.client.retrieve_instance(record.study_uid, record.seg_series_uid, record.seg_sop_uid)
            grid = grid_from_datasets(source)
            label_map = decode_seg(seg, source).label_map
            stored = label_map.astype(np.uint8 if label_map.max(initial=0) < 256 else np.uint16)
            path.write_bytes(nib.Nifti1Image(np.ascontiguousarray(stored.transpose(2, 1, 0)), grid.affine).to_bytes())

        return self.cache.get(record.seg_series_uid, record.seg_sop_uid, decode)

    def get_label_info(self, label_id: str, label_tag: str) -> dict[str, Any]:
        record = self._label_record(label_id, label_tag)
        return {
            "SeriesInstanceUID": record.seg_series_uid,
            "image": record.source_series_uid,
            "role": record.role,
            "tag": record.tag,
            "author": record.author,
            "created_by": record.created_by,
            "created_at": record.created_at.isoformat(),
        }

    def remove_label(self, label_id: str, label_tag: str) -> None:
        self.seg_store.remove(self._label_record(label_id))

    def update_label_info(self, label_id: str, label_tag: str, info: dict[str, Any]) -> None:
        raise InvalidInput("a stored SEG is immutable: save a new label instead")

    def images_of(self, modality: str) -> set[str]:
        """The image series of one modality, from a single listing."""
        return {uid for uid, hit in self._image_series().items() if str(getattr(hit, "Modality", "")) == modality}

    def final_labels(self, modality: str) -> list[Segmentation]:
        """The newest final label of each series of ``modality``: what training learns from (never predictions)."""
        images = self.images_of(modality)
        latest: dict[str, Segmentation] = {}
        for record in self._labels(DefaultLabelTag.FINAL.value):
            if record.source_series_uid in images:
                latest[record.source_series_uid] = record
        return [latest[uid] for uid in sorted(latest)]

    def label_map(self, record: Segmentation) -> np.ndarray:
        """A stored SEG decoded on its series' grid (slice, row, column); values are segment numbers."""
        return self.seg_content(record).label_map

    def seg_content(self, record: Segmentation) -> SegContent:
        """A stored SEG's segments on its series' grid, named as its record lists them (numbered as in the SEG)."""
        image = nib.load(self._cached_label(record))
        assert isinstance(image, nib.Nifti1Image)
        label_map = np.ascontiguousarray(np.asanyarray(image.dataobj).transpose(2, 1, 0))
        names = {int(item["number"]): str(item["label"]) for item in record.segments or []}
        return seg_content(label_map, names)  # our SEGs hold segments 1..N, none empty: kept as numbered

    # -- whole store ------------------------------------------------------------------------------------------
    def datalist(self) -> list[dict[str, Any]]:
        images = self._image_series()
        latest: dict[str, str] = {}
        for record in self._labels(DefaultLabelTag.FINAL.value):
            if record.source_series_uid in images:
                latest[record.source_series_uid] = record.seg_series_uid
        return [
            {
                "image": str(self._cached_series(self.image_state(image))[0]),
                "label": self.get_label_uri(label, DefaultLabelTag.FINAL.value),
            }
            for image, label in sorted(latest.items())
        ]

    def get_dataset_archive(self, limit_cases: int | None) -> str:
        raise InvalidInput("images stay in Orthanc: export them through /dicom-web")

    def refresh(self) -> None:
        """Nothing to do: every listing asks Orthanc."""

    def status(self) -> dict[str, Any]:
        images = self._image_series()
        tags: dict[str, int] = {}
        labeled: set[str] = set()
        for record in self._labels():
            if record.source_series_uid in images:
                tags[record.tag] = tags.get(record.tag, 0) + 1
                if record.tag == DefaultLabelTag.FINAL.value:
                    labeled.add(record.source_series_uid)
        return {"total": len(images), "completed": len(labeled), "label_tags": tags}

    def json(self) -> dict[str, Any]:
        objects: dict[str, Any] = {}
        for uid, hit in sorted(self._image_series().items()):
            info = {"Modality": str(getattr(hit, "Modality", "")), "StudyInstanceUID": str(hit.StudyInstanceUID)}
            objects[uid] = {"image": {"info": info}, "labels": {}}
        for record in self._labels(predictions=True):  # a model's output under its tag, original, as MONAI Label's
            if record.source_series_uid in objects:
                names = {str(item["label"]): int(item["number"]) for item in record.segments or []}
                objects[record.source_series_uid]["labels"][record.tag] = {
                    "info": {
                        "SeriesInstanceUID": record.seg_series_uid,
                        "author": record.author,
                        "params": {"label_names": names},  # what a client maps the label file's values with
                    }
                }
        return {"name": self._name, "description": self._description, "objects": objects}


@contextlib.contextmanager
def _removed_on_error(upload: str) -> Iterator[None]:
    """MONAI Label deletes an upload's temporary file only after a successful answer: we do it on failure."""
    try:
        yield
    except Exception:
        Path(upload).unlink(missing_ok=True)
        raise


def _segment_labels(label_info: dict[str, Any]) -> dict[int, str]:
    """Segment names from MONAI Label's ``label_info`` ([{name, idx}]) or ``label_names`` ({name: value})."""
    names: dict[int, str] = {}
    for item in label_info.get("label_info") or []:
        if isinstance(item, dict) and "idx" in item:
            names[int(item["idx"])] = str(item.get("name", ""))
    for name, value in (label_info.get("label_names") or {}).items():
        names[int(value)] = str(name)
    return names


def _read_dicom_upload(path: Path, max_bytes: int) -> list[Dataset]:
    members: list[bytes] = []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            files = [info for info in archive.infolist() if not info.is_dir()]
            unpacked = sum(info.file_size for info in files)
            if unpacked > max_bytes:  # a small archive may unpack to a huge one
                raise InvalidInput(f"the archive unpacks to {unpacked} bytes, over the limit of {max_bytes}")
            members = [archive.read(info) for info in files]
    else:
        members = [path.read_bytes()]
    datasets: list[Dataset] = []
    for data in members:
        try:
            ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))
            ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.SOPClassUID  # noqa: B018 - required attributes
            ds.pixel_array  # noqa: B018 - refuse undecodable pixels before anything is stored
        except (InvalidDicomError, AttributeError, ValueError, EOFError, KeyError, TypeError) as error:
            raise InvalidInput(f"not a readable DICOM image: {error}") from error
        datasets.append(ds)
    if not datasets:
        raise InvalidInput("the upload holds no DICOM file")
    return datasets
