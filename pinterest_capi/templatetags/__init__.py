"""Template tags of pinterest_capi: ``{% load pinterest_capi %}``."""
