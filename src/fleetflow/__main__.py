"""``python -m fleetflow`` is the ``fleetflow`` command (handy where the script is not on PATH)."""

from fleetflow.cli import main

if __name__ == "__main__":
    main()
