"""`python3 -m zoo.docs`: the README's and the documentation site's measured figures, generated from the records.

records (the manifest's tags, benchmark records by machine), markdown (tables, units) and files (links, tables
other commands write) feed one module per kind of page: models, benchmarks, deployment, studies. assemble puts
every generated file together and checks or writes it; capture reruns the command guides' examples; __main__
is the command.
"""
