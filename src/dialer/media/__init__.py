"""The media plane (issue #16): rtpengine as the relay the SIP driver anchors calls on (``rtpengine.py``, its ``ng``
control protocol in ``ng.py``), call recordings (``pcap.py``, ``recordings.py``), answering-machine detection
(``amd.py``). The engine never imports it; the SIP driver reaches it through
:class:`dialer.telephony.sip.anchor.MediaAnchor`."""
