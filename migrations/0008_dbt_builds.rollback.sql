drop table identity_loader.dbt_builds;
