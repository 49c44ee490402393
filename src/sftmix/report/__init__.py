"""The report: a study's figures and tables, the reference study's numbers beside them, the trade-off."""
