from initstudy.cli import exit_process, main

if __name__ == "__main__":  # a spawned worker (initstudy.parallel) imports this module too
    exit_process(main())
