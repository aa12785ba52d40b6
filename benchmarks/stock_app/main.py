"""A stock MONAI Label app: the benchmark network as a plain ``BasicInferTask`` on MONAI Label's DICOMweb datastore.

Nothing of AWESOMME runs here: this is what a MONAI Label user writes from the sample apps (LoadImaged,
intensity scaling, a ``SlidingWindowInferer``, softmax + argmax, ``Restored``), so it is the baseline of Table 3.
The benchmark passes the network, its weights and the window through environment variables.
"""

from __future__ import annotations

import json
import os
from typing import Any

from monai.inferers import Inferer, SlidingWindowInferer
from monai.networks.nets import UNet
from monai.transforms import (
    Activationsd,
    AsDiscreted,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    ScaleIntensityRanged,
    SqueezeDimd,
    ToNumpyd,
)
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType
from monailabel.tasks.infer.basic_infer import BasicInferTask
from monailabel.transform.post import Restored

MODEL = os.environ.get("BENCH_MODEL", "bench_unet")


class StockSegmentation(BasicInferTask):
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        super().__init__(
            path=spec["weights"],
            network=UNet(**spec["network"]),
            type=InferType.SEGMENTATION,
            labels={"nodule": 1},
            dimension=3,
            description="Table 3 benchmark network (stock MONAI Label)",
        )

    def pre_transforms(self, data: Any = None) -> list:
        scale = self.spec["scale"]
        return [
            LoadImaged(keys="image"),
            EnsureTyped(keys="image", device=data.get("device") if data else None),
            EnsureChannelFirstd(keys="image"),
            ScaleIntensityRanged(keys="image", **scale),
        ]

    def inferer(self, data: Any = None) -> Inferer:
        return SlidingWindowInferer(
            roi_size=self.spec["roi_size_xyz"], sw_batch_size=self.spec["sw_batch_size"], overlap=self.spec["overlap"]
        )

    def post_transforms(self, data: Any = None) -> list:
        return [
            EnsureTyped(keys="pred", device=data.get("device") if data else None),
            Activationsd(keys="pred", softmax=True),
            AsDiscreted(keys="pred", argmax=True),
            SqueezeDimd(keys="pred", dim=0),
            ToNumpyd(keys="pred"),
            Restored(keys="pred", ref_image="image"),
        ]


class StockApp(MONAILabelApp):
    def __init__(self, app_dir: str, studies: str, conf: dict[str, Any]) -> None:
        self.spec = json.loads(os.environ["BENCH_STOCK_SPEC"])
        super().__init__(app_dir=app_dir, studies=studies, conf=conf, name="stock", description="stock", version="1")

    def init_infers(self) -> dict[str, InferTask]:
        return {MODEL: StockSegmentation(self.spec)}
