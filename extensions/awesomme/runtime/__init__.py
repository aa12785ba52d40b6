"""Background services that ``make run`` starts: Orthanc and the platform server, with pid files under ``var/``."""
