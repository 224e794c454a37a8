from initstudy.cli import main

if __name__ == "__main__":  # a spawned worker (initstudy.parallel) imports this module too
    raise SystemExit(main())
