"""Everything that talks to Orthanc: the pooled client, volumes and their cache, SEG objects, the datastore."""
