"""monitor: a media-monitoring alert daemon for US-China technology and security news."""

__version__ = "0.1.0"
USER_AGENT = f"monitor/{__version__} (+https://github.com/monitor-news/monitor; feed alert daemon)"
