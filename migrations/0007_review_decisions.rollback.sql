drop table identity_loader.review_decisions;
