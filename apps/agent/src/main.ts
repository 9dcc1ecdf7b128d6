console.log("flatnet");
