"""Reports built from an explain run's index: the HTML gallery, the metric contact sheet, the CSV twin."""

from otx_xai.report.contact_sheet import write_contact_sheet
from otx_xai.report.csv_index import write_csv_index
from otx_xai.report.gallery import write_gallery

__all__ = ["write_contact_sheet", "write_csv_index", "write_gallery"]
