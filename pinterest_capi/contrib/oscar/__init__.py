"""django-oscar adapter: Oscar's own signals → Pinterest events.

Add ``"pinterest_capi.contrib.oscar"`` to INSTALLED_APPS; see
:mod:`pinterest_capi.contrib.oscar.mappers` for what each event carries.
"""
