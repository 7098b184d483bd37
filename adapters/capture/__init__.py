"""Capture importers: pcap/pcapng flows (and, elsewhere, COMTRADE records)."""
