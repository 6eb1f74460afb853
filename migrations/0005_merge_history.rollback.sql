drop table identity_loader.merge_history;
