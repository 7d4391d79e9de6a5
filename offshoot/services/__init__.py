"""``python -m offshoot.services <role>[,<role>...]``: one distributed-mode process, configured by
the ``OFFSHOOT_*`` environment (see ``offshoot.roles.Settings.from_env``)."""
