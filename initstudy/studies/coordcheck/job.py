"""`coordcheck` (lab 30): placeholder until the coordinate check's job lands."""
HELP = "lab 30: the coordinate check (mup's get_coord_data), SP vs muP"


def add_arguments(parser):
    pass


def main(args):
    raise SystemExit("coordcheck: not yet")
