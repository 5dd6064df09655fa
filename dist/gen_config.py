#!/usr/bin/env python3
"""parleyd.ini(5) and the shipped parleyd.ini, both from `parleyd --dump-keys`
(router/config.c's key table), so that neither can drift from the code.

  gen_config.py --parleyd BIN [--man OUT.5] [--ini OUT.ini] [--set SEC.KEY=VALUE ...]
                [--version V] [--date YYYY-MM-DD]

--set gives a key a value in the shipped file (written uncommented there);
every other key is written commented out with its default. The page lists
every key with its type, default, allowed values and description."""
import argparse
import subprocess
import sys
import textwrap

ROOM_KEYS = [
    ("description", "string", "", "", "the room's description"),
    ("topic", "string", "", "", "the room's topic"),
    ("privacy", "choice", "open", "open|closed|secret",
     "open and closed rooms are listed for everyone, secret ones for their members; "
     "closed and secret rooms admit only members"),
    ("members", "string", "", "", "comma-separated SIP URIs"),
    ("managers", "string", "", "", "members with operator rights"),
    ("filepost", "boolean", "true", "true|false", "files may be posted"),
    ("logged", "boolean", "true", "true|false", "keep history"),
    ("invite", "boolean", "true", "true|false", "members may invite"),
]


def keys(parleyd):
    out = subprocess.run([parleyd, "--dump-keys"], check=True, capture_output=True,
                         text=True).stdout
    rows = []
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) != 6:
            sys.exit("gen_config: bad --dump-keys line: %r" % line)
        rows.append(f)
    if not rows:
        sys.exit("gen_config: parleyd --dump-keys printed nothing")
    return rows


def roff(s):
    """Text for a roff line: backslashes, hyphens and a leading dot escaped."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    if s.startswith((".", "'")):
        s = "\\&" + s
    return s


def man_page(rows, version, date):
    o = []
    o.append('.TH PARLEYD.INI 5 "%s" "parley %s" "Parley"' % (date, version))
    o.append(".SH NAME")
    o.append("parleyd.ini \\- configuration file of the Parley group chat server")
    o.append(".SH SYNOPSIS")
    o.append("/etc/parley/parleyd.ini")
    o.append(".SH DESCRIPTION")
    o.append("An INI file read by")
    o.append(".BR parleyd (8)")
    o.append("with")
    o.append(".BR \\-c .")
    o.append("Sections are written")
    o.append(".BI [ section ] ,")
    o.append("keys")
    o.append(".IB key \" = \" value ;")
    o.append("a line starting with")
    o.append(".B ;")
    o.append("or")
    o.append(".B #")
    o.append("is a comment. Every key is optional and has the default shown; an unknown")
    o.append("section or key, or a value outside its range, stops parleyd with a message")
    o.append("naming the file, line and key.")
    o.append(".B parleyd \\-\\-check\\-config \\-c")
    o.append(".I FILE")
    o.append("checks a file without starting the server;")
    o.append(".B \\-\\-set")
    o.append(".IB section . key = value")
    o.append("overrides one key on the command line.")
    o.append(".PP")
    o.append("This page is generated from the server's key table")
    o.append(".RB ( \"parleyd \\-\\-dump\\-keys\" ).")
    o.append("Integers are decimal; booleans are")
    o.append(".BR true / false ,")
    o.append(".BR yes / no ,")
    o.append(".BR on / off")
    o.append("or")
    o.append(".BR 1 / 0 .")
    o.append(".SH KEYS")
    section = None
    for sec, name, typ, dflt, allowed, help_ in rows:
        if sec != section:
            section = sec
            o.append(".SS [%s]" % roff(sec))
        o.append(".TP")
        o.append('.BI "%s = " "%s"' % (roff(name), roff(dflt) if dflt else '(empty)'))
        what = typ
        if allowed:
            what += ", " + (allowed.replace("|", ", ") if "|" in allowed else allowed)
        o.append("(%s) %s." % (roff(what), roff(help_)))
    o.append(".SS [room:NAME]")
    o.append("A section")
    o.append(".BI [room: NAME ]")
    o.append("declares a room, created at start when absent and kept in line with the file")
    o.append("afterwards; rooms created with")
    o.append(".BR parleyctl (8)")
    o.append("live in the catalog only. Keys:")
    for name, typ, dflt, allowed, help_ in ROOM_KEYS:
        o.append(".TP")
        o.append('.BI "%s = " "%s"' % (roff(name), roff(dflt) if dflt else '(empty)'))
        what = typ + (", " + allowed.replace("|", ", ") if allowed else "")
        o.append("(%s) %s." % (roff(what), roff(help_)))
    o.append(".SH EXAMPLE")
    o.append(".EX")
    for line in ["[server]", "domain = example.com", "data_dir = /var/lib/parley",
                 "[sip]", "listen = 0.0.0.0:5061", "[control]", "socket_group = parley",
                 "[metrics]", "listen = 127.0.0.1:9187", "[room:Lobby]",
                 "description = Open room for everyone"]:
        o.append(roff(line))
    o.append(".EE")
    o.append(".SH FILES")
    o.append(".TP")
    o.append(".I /etc/parley/parleyd.ini")
    o.append("the configuration the packaged service reads")
    o.append(".TP")
    o.append(".I /var/lib/parley")
    o.append("its data directory")
    o.append(".SH SEE ALSO")
    o.append(".BR parleyd (8),")
    o.append(".BR parleyctl (8),")
    o.append(".BR htdigest (1)")
    return "\n".join(o) + "\n"


def ini_file(rows, sets):
    o = ["; parleyd configuration (parleyd.ini(5)). Every key is listed with its",
         "; default, commented out; uncomment and change what you need, then check",
         ";   parleyd --check-config -c /etc/parley/parleyd.ini",
         "; and `systemctl restart parleyd` (SIGHUP reloads only the certificate and",
         "; the user file). Generated from `parleyd --dump-keys`."]
    section = None
    for sec, name, typ, dflt, allowed, help_ in rows:
        if sec != section:
            section = sec
            o.append("")
            o.append("[%s]" % sec)
        what = typ + (" " + allowed if allowed else "")
        # parleyd's INI reader (libinih) reads at most 200 bytes a line
        # and takes the rest as a line of its own: keep comments short.
        o.extend(textwrap.wrap("%s (%s)" % (help_, what), width=96,
                               initial_indent="; ", subsequent_indent="; "))
        key = "%s.%s" % (sec, name)
        if key in sets:
            o.append("%s = %s" % (name, sets.pop(key)))
        else:
            o.append(";%s = %s" % (name, dflt))
    if sets:
        sys.exit("gen_config: --set for unknown keys: %s" % ", ".join(sets))
    o.append("")
    o.append("; Rooms: one section each, created at start when absent (parleyd.ini(5)).")
    o.append(";[room:Lobby]")
    for name, typ, dflt, allowed, help_ in ROOM_KEYS:
        o.append(";%s = %s" % (name, dflt if name != "description" else "Open room for everyone"))
    return "\n".join(o) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parleyd", required=True)
    ap.add_argument("--man")
    ap.add_argument("--ini")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--version", default="0")
    ap.add_argument("--date", default="2026-12-06")
    a = ap.parse_args()
    rows = keys(a.parleyd)
    sets = {}
    for s in a.set:
        k, _, v = s.partition("=")
        sets[k] = v
    if a.man:
        with open(a.man, "w") as f:
            f.write(man_page(rows, a.version, a.date))
    if a.ini:
        with open(a.ini, "w") as f:
            f.write(ini_file(rows, sets))


if __name__ == "__main__":
    main()
