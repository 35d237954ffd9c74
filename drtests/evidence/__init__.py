"""What a run leaves behind: the record of every scenario and the reports made from it."""
