"""SIP trunks and operators' SIP devices: configuration (REST API) and what the engine last saw of them."""
