"""OPC-UA source on asyncua: subscriptions with security, trust list, reconnect, simulator."""
