#!/usr/bin/python3
"""libtorrent as a leecher for bench/swarm.sh: downloads FILE.torrent into
DIR and exits once every piece is verified. Settings as in the notes: no
DHT, LSD, UPnP or NAT-PMP, no uTP, no encryption, several connections per
address allowed. Usage: swarm-libtorrent.py FILE.torrent DIR"""
import sys, time
import libtorrent as lt

torrent, out = sys.argv[1:3]
session = lt.session({
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "allow_multiple_connections_per_ip": True,
    "out_enc_policy": lt.enc_policy.disabled, "in_enc_policy": lt.enc_policy.disabled,
})
handle = session.add_torrent({"ti": lt.torrent_info(torrent), "save_path": out})
while not handle.status().is_seeding:
    if handle.status().errc.value():
        sys.exit("libtorrent: %s" % handle.status().errc.message())
    time.sleep(0.05)
