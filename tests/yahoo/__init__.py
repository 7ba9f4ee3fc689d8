"""Offline Yahoo Finance stand-in: lets yfinance's real code run end to end over loopback (127.0.0.1 only)."""
