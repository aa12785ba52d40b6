"""DICOM codecs that never talk to Orthanc: series <-> volumes, SEG, RTSTRUCT, label files and their geometry."""
