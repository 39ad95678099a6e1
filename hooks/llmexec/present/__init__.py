"""Present: outcomes as escaped HTML, checked claims as marks, the drift report; no execution here."""
