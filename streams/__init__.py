"""streams: the Faust worker: windowed metrics per system, gates and alerts."""
