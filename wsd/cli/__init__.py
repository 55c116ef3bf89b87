"""Command-line interface: one short module per command over the pure cores."""

#: Extra sections of ``wsd info`` per file kind: functions WsdFile -> dict, registered by the
#: commands that write that kind (keys starting ``text_`` are printed as they are).
info_extra: dict = {}
