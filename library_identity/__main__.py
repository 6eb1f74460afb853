from library_identity.cli import main

main(prog_name="library-identity")
