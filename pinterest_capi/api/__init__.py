"""The app's HTTP API (Django REST framework): the browser beacon in :mod:`.beacon`."""
