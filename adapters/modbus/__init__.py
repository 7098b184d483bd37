"""Modbus TCP and RTU-over-TCP source: profiles, request planner, decoder, poller, simulator."""
