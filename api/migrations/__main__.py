from docchain.api.migrations import main

main()
