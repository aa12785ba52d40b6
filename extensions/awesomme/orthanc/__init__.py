"""Everything that talks to Orthanc: the pooled client, the cache of decoded series, the datastore."""
