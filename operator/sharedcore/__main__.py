from sharedcore.cli import main

main()
