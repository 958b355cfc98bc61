"""Writers that turn the canonical sample (devkit.sample_data) into the files a CRM or an
ad platform exports, so a test can load the same data through each export format: one
module per source type, each with `write_<type>_files(sample_dir, out_dir, **options)`."""
