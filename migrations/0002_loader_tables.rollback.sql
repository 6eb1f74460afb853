drop table identity_loader.rotation_refresh_results;
drop table identity_loader.raw_verdicts;
drop table identity_loader.runs;
