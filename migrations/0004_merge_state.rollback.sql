drop table identity_loader.library_identity_artist_ids;
drop table identity_loader.merge_skips;
drop table identity_loader.merges;
