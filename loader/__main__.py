from loader.cli import main

main(prog_name="library-identity")
