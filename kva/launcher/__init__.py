"""The ``kva`` command and ``kva up``: the launcher, apart from the core library.

``cli`` dispatches to each service's ``add_parser``; ``up`` runs the whole
pipeline on one machine through ``layout`` (what to run) and ``supervisor``
(child processes); ``settingsdoc`` renders every command's settings.
Only this subpackage imports every service; the core (``kva/*.py``) imports none.
"""
