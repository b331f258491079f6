"""One module per algorithm; this list is the provider's catalogue."""

from __future__ import annotations


def all_algorithms() -> list[type]:
    # Imported here, not at module level, so the provider module stays cheap to import.
    from .chip import ChipAlgorithm
    from .ee_classify import EEClassifyAlgorithm
    from .ee_composite import EECompositeAlgorithm
    from .ee_download import EEDownloadAlgorithm
    from .ee_export_image import EEExportImageAlgorithm
    from .ee_export_training import EEExportTrainingAlgorithm
    from .ee_series import EESeriesAlgorithm
    from .ee_series_export import EESeriesExportAlgorithm
    from .ee_upload import EEUploadAlgorithm
    from .evaluate import EvaluateAlgorithm
    from .export_onnx import ExportOnnxAlgorithm
    from .export_savedmodel import ExportSavedModelAlgorithm
    from .extract_samples import ExtractSamplesAlgorithm
    from .flatten import FlattenAlgorithm
    from .model_card import ModelCardAlgorithm
    from .mosaic import MosaicAlgorithm
    from .predict import PredictAlgorithm
    from .rasterize_mask import RasterizeMaskAlgorithm
    from .sample_points import SamplePointsAlgorithm
    from .setup_runtime import SetupRuntimeAlgorithm
    from .suggest_points import SuggestPointsAlgorithm
    from .summarize import SummarizeAlgorithm
    from .train import TrainAlgorithm

    return [
        SamplePointsAlgorithm,
        ExtractSamplesAlgorithm,
        TrainAlgorithm,
        EvaluateAlgorithm,
        PredictAlgorithm,
        EECompositeAlgorithm,
        EEExportTrainingAlgorithm,
        EEExportImageAlgorithm,
        EEDownloadAlgorithm,
        EEUploadAlgorithm,
        EEClassifyAlgorithm,
        EESeriesAlgorithm,
        EESeriesExportAlgorithm,
        ExportSavedModelAlgorithm,
        RasterizeMaskAlgorithm,
        ChipAlgorithm,
        ExportOnnxAlgorithm,
        SuggestPointsAlgorithm,
        ModelCardAlgorithm,
        MosaicAlgorithm,
        FlattenAlgorithm,
        SummarizeAlgorithm,
        SetupRuntimeAlgorithm,
    ]
