#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal and shows what a person would see on it at the end: every
byte the command writes (stdout and stderr both go to the terminal) is fed to pyte, a VT100/
xterm terminal emulator, and its final screen is printed.

    terminal.py --cols 200 --rows 100 [--raw FILE] -- COMMAND [ARG...]

Prints one JSON object: {"status": EXIT_CODE, "screen": [LINE, ...], "history": [LINE, ...]}
with trailing spaces cut; `history` holds the lines that scrolled off the top (the scrollback),
`screen` the visible ones down to the last non-empty line. --raw saves the bytes as written,
for checks on the frames drawn meanwhile. Needs pyte (scripts/test installs it).
"""
import argparse
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import pyte


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cols", type=int, default=200)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--raw", help="save the bytes written to the terminal here")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")

    master, slave = pty.openpty()
    # The size is set before the command starts, so its first look at the terminal sees it.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", args.rows, args.cols, 0, 0))
    child = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave,
                             start_new_session=True, close_fds=True)
    os.close(slave)
    data = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer closed its side
            break
        if not chunk:
            break
        data.extend(chunk)
    status = child.wait()
    os.close(master)
    if args.raw:
        with open(args.raw, "wb") as f:
            f.write(data)

    screen = pyte.HistoryScreen(args.cols, args.rows, history=10000)
    pyte.ByteStream(screen).feed(bytes(data))
    history = ["".join(line[x].data for x in range(args.cols)).rstrip()
               for line in screen.history.top]
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    json.dump({"status": status, "screen": lines, "history": history}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
