"""Reading layers: decompression, a streaming tar walker, whiteouts. Never unpacks to disk."""
