"""The network: the HTTP client (transport, with the private-address guard) and the
downloader (limits, retries, redirects, origins, the Wayback Machine, validation),
which yields checked temporary files and probes. No state, no layout: see ``keep``."""
