"""The evaluation service (see ../shared/DESIGN.md); built by its own issue."""
